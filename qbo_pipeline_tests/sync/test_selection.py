from __future__ import annotations

import pandas as pd
import pytest

from qbo_pipeline.sync.selection import active_conditions, row_selected, select_frame
from qbo_pipeline_tests.sync.sample_specs import CUSTOMER, TIME, make_spec

SPEC = make_spec(TIME)
ROWS = pd.DataFrame([
    {"id": 1, "approved": 1, "status": "Billable"},
    {"id": 2, "approved": 0, "status": "Billable"},
    {"id": 3, "approved": True, "status": "NotBillable"},
])


def test_settings_on_by_default_filter_rows() -> None:
    assert [c.column for c in active_conditions(SPEC)] == ["approved"]
    assert list(select_frame(SPEC, ROWS)["id"]) == [1, 3]


def test_overrides_switch_settings() -> None:
    assert list(select_frame(SPEC, ROWS, {"approved_only": False})["id"]) == [1, 2, 3]
    both = {"approved_only": True, "billable_only": True}
    assert list(select_frame(SPEC, ROWS, both)["id"]) == [1]
    assert row_selected(SPEC, {"approved": "true", "status": "HasBeenBilled"}, both)
    assert not row_selected(SPEC, {"approved": False, "status": "Billable"})


def test_unknown_settings_and_columns_are_errors() -> None:
    with pytest.raises(ValueError, match="spec time_entry has no setting approved "):
        active_conditions(SPEC, {"approved": True})
    with pytest.raises(ValueError, match="read the column.s. approved, which the source rows"):
        select_frame(SPEC, ROWS.drop(columns=["approved"]))


def test_a_spec_without_settings_keeps_every_row() -> None:
    assert len(select_frame(make_spec(CUSTOMER), ROWS)) == 3

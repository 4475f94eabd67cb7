"""Whatever a spec file holds, the loader returns specs or raises its own SpecError.

Hypothesis feeds the loader arbitrary nested data, arbitrary YAML-ish text and bytes, and the
shipped specs with random parts replaced, removed or added (from data, from text and from
files, alone and as a directory). Each answer is either specs or a SpecError whose every
problem reads `file: path: message`; any other exception fails the test.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbo_pipeline.specs import SpecError, load_spec, load_specs, parse_spec, parse_spec_text
from qbo_pipeline.specs.company_settings import COMPANY_SETTINGS_FILE

SPECS = Path(__file__).resolve().parents[2] / "mapping_specs"
SHIPPED = [yaml.safe_load(path.read_text(encoding="utf-8"))
           for path in sorted(SPECS.glob("*.yaml")) if path.name != COMPANY_SETTINGS_FILE]
ORIGIN = "spec.yaml"
SAFE_STEM = re.compile(r"[a-z][a-z0-9_]{0,30}")
FAST = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Words a spec is made of, so that random documents reach past the first shape check.
WORDS = [
    "name", "label", "qbo_entity", "direction", "source", "fields", "lines", "match_keys",
    "conflict", "on_source_delete", "settings", "pull", "table", "query", "primary_key",
    "updated_at", "business_date", "deleted", "filter", "column", "template", "constant",
    "ref", "lookup", "spec", "by", "value", "type", "hint", "required", "email", "pattern",
    "min", "max", "min_length", "max_length", "allowed_values", "allowed_characters",
    "parent_key", "order_by", "tax_line", "amount_column", "default", "description", "when",
    "equals", "one_of", "target", "qbo_id_column", "read", "modified_within_days",
    "on_qbo_delete", "inactive_column", "auto_apply", "set", "field",
    "client", "invoice", "Customer", "Invoice", "Item", "TimeActivity", "CompanyInfo",
    "DisplayName", "CompanyNmae", "BillAddr.City", "PrimaryEmailAddr.Address", "CustomerRef",
    "ParentRef", "Line", "SyncToken", "Balance", "DetailType", "SalesItemLineDetail.ItemRef",
    "push", "pull", "two_way", "review", "qbo_wins", "upsert", "linked", "void", "inactivate",
    "delete", "ignore", "mark_inactive", "set_deleted", "number", "boolean", "date",
    "{number} - {name}", "{0}", "{name!x}", "{rate:%}", "{a:{b}}", "[a-", "a{99999999999}",
    "Type = 'Service'", "Balance > '0' OR x", "WHERE a = 1", "SELECT 1;", "name <> 'x",
]
SCALARS = (st.none() | st.booleans() | st.integers(-10**20, 10**20)
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(WORDS)
           | st.text(max_size=12) | st.dates(dt.date(1990, 1, 1), dt.date(2100, 1, 1)))
KEYS = st.sampled_from(WORDS) | st.text(max_size=8) | st.integers(0, 3) | st.booleans()
DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(KEYS, inner, max_size=4), max_leaves=12)
SPEC_DATA = st.dictionaries(st.sampled_from(WORDS), DATA, max_size=8)
YAML_PIECES = st.sampled_from([
    "name: client", "qbo_entity: Customer", "fields:", "  DisplayName: {column: name}",
    "  DisplayName:", "    column: name", "source: {table: t, primary_key: id, updated_at: u}",
    "\tcolumn: x", "---", "- a", "? complex", "key: [unclosed", "key: {a: 1, a: 2}", "&x a: *x",
    "a: &x [*x]", "a: !!python/object:os.system x", "a: !!binary ***", "a: 2024-02-30",
    "a: !!int nope", ": :", "'", "\"", "%YAML 1.1", "a: |", "  text", "<<: {a: 1}", "\x00",
    "\ufeffname: x", "on: yes", "x: 1e999", "y: .nan",
])
YAML_TEXT = st.lists(YAML_PIECES | st.text(max_size=20), max_size=12).map("\n".join)


def answers_cleanly(origins: tuple[str, ...], load: Callable[[], Any]) -> None:
    """`load` returns, or raises SpecError whose every problem is `origin: path: message`."""
    try:
        load()
    except SpecError as error:
        assert error.problems, "a SpecError names at least one problem"
        for problem in error.problems:
            origin = next((o for o in origins if problem.startswith(f"{o}: ")), None)
            assert origin is not None, problem
            path, separator, message = problem[len(origin) + 2:].partition(": ")
            assert separator and path and message.strip(), problem


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A shipped spec with one to three parts replaced by random data, removed or added."""
    spec = copy.deepcopy(draw(st.sampled_from(SHIPPED)))
    for _ in range(draw(st.integers(1, 3))):
        _mutate(draw, spec)
    return spec


def _mutate(draw: st.DrawFn, root: dict[str, Any]) -> None:
    parent: dict[str, Any] | list[Any] = root
    key: Any = draw(st.sampled_from(list(root)))
    while isinstance(parent[key], dict | list) and parent[key] and draw(st.booleans()):
        parent = parent[key]
        key = draw(st.sampled_from(list(parent) if isinstance(parent, dict)
                                   else range(len(parent))))
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "replace":
        parent[key] = draw(DATA)
    elif action == "remove":
        del parent[key]
    elif isinstance(parent, dict):
        parent[draw(KEYS)] = draw(DATA)
    else:
        parent.append(draw(DATA))


def _dump(data: Any) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's is ten times faster
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True)


@FAST
@given(SPEC_DATA | DATA)
def test_any_data_is_a_spec_or_a_spec_error(data: Any) -> None:
    answers_cleanly((ORIGIN,), lambda: parse_spec(data, ORIGIN, "spec"))


@FAST
@given(YAML_TEXT)
def test_any_text_is_a_spec_or_a_spec_error(text: str) -> None:
    answers_cleanly((ORIGIN,), lambda: parse_spec_text(text, ORIGIN))


@FAST
@given(mutated_specs())
def test_a_mutated_shipped_spec_is_a_spec_or_a_spec_error(spec: dict[str, Any]) -> None:
    answers_cleanly((ORIGIN,), lambda: parse_spec(spec, ORIGIN))
    answers_cleanly((ORIGIN,), lambda: parse_spec_text(_dump(spec), ORIGIN))


@pytest.fixture(scope="module")
def spec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("specs")


@FAST
@given(content=st.binary(max_size=200) | YAML_TEXT.map(str.encode)
       | mutated_specs().map(_dump).map(str.encode))
def test_any_file_is_a_spec_or_a_spec_error(spec_dir: Path, content: bytes) -> None:
    path = spec_dir / "client.yaml"
    path.write_bytes(content)
    answers_cleanly((str(path),), lambda: load_spec(path))


@settings(FAST, max_examples=100)  # each example is up to three specs: ~200 spec files
@given(st.lists(mutated_specs(), min_size=1, max_size=3))
def test_a_directory_of_mutated_specs_is_a_spec_set_or_a_spec_error(
        tmp_path_factory: pytest.TempPathFactory, specs: list[dict[str, Any]]) -> None:
    directory = tmp_path_factory.mktemp("set")
    origins: list[str] = []
    for index, spec in enumerate(specs):
        # Named as the spec says when that can be a file name, so that references resolve.
        name = spec.get("name")
        stem = name if isinstance(name, str) and SAFE_STEM.fullmatch(name) else f"spec{index}"
        path = directory / f"{stem}.yaml"
        if str(path) in origins:
            path = directory / f"spec{index}.yaml"
        path.write_text(_dump(spec), encoding="utf-8")
        origins.append(str(path))
    answers_cleanly(tuple(origins), lambda: load_specs(directory))


def test_the_shipped_specs_survive_a_round_trip_through_yaml() -> None:
    """The mutation tests start from specs that load: a refusal there is the mutation's."""
    for spec in SHIPPED:
        assert parse_spec_text(_dump(spec), ORIGIN).name == spec["name"]


def test_a_key_that_looks_like_the_separator_is_quoted_in_the_problem() -> None:
    """Found by the property above: a YAML key ': ' made `file: : : unknown key ...`."""
    data = {**copy.deepcopy(SHIPPED[0]), ": ": 1, " ": 2}
    answers_cleanly((ORIGIN,), lambda: parse_spec(data, ORIGIN))
    with pytest.raises(SpecError) as refused:
        parse_spec(data, ORIGIN)
    assert f"{ORIGIN}: ':\\x20': unknown key ': '" in refused.value.problems[0]

"""The Dagster definitions of the pipeline (`dagster dev -w workspace.yaml` loads `defs`).

Assets come from the mapping specs in `QBO_MAPPING_SPECS` (default: `mapping_specs/` in the
working directory, else the one of the checkout this package is installed from);
resources from the environment (see `resources.py`); partitions from `partitions.py`; the
job and the 15-minute schedule from `jobs.py`; the realm-partition sensor from `sensors.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import Definitions

from qbo_pipeline.defs.assets import build_all_assets
from qbo_pipeline.defs.jobs import incremental_sync_schedule, sync_job
from qbo_pipeline.defs.resources import QBOConnection, SourceDatabase, StateDatabase
from qbo_pipeline.defs.sensors import realm_partitions_sensor
from qbo_pipeline.specs import load_specs

MAPPING_SPECS_VARIABLE = "QBO_MAPPING_SPECS"
DEFAULT_MAPPING_SPECS = Path("mapping_specs")
CHECKOUT_MAPPING_SPECS = Path(__file__).resolve().parents[2] / "mapping_specs"


def mapping_specs_directory() -> Path:
    """Where the specs are: the variable if set, else ./mapping_specs, else the checkout's."""
    if configured := os.environ.get(MAPPING_SPECS_VARIABLE):
        return Path(configured)
    if DEFAULT_MAPPING_SPECS.is_dir() or not CHECKOUT_MAPPING_SPECS.is_dir():
        return DEFAULT_MAPPING_SPECS
    return CHECKOUT_MAPPING_SPECS


specs = load_specs(mapping_specs_directory())

defs = Definitions(
    assets=build_all_assets(specs),
    jobs=[sync_job],
    schedules=[incremental_sync_schedule],
    sensors=[realm_partitions_sensor],
    resources={
        "source_db": SourceDatabase.from_env(),
        "state_db": StateDatabase.from_env(),
        "qbo": QBOConnection.from_env(),
    },
)

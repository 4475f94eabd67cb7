"""The Dagster definitions of the pipeline: open this module first.

`dagster dev -w workspace.yaml` loads `defs`, which calls `build_defs()` when the code location
loads (never at import): the mapping specs from `QBO_MAPPING_SPECS` (default: `mapping_specs/`
in the working directory, else the one of the checkout this package is installed from), the
sync start date from `QBO_SYNC_START_DATE`, resources from the environment (`resources.py`).
The CLI builds the same definitions with its own resources, so its runs belong to the same
`sync_job` that the UI shows and can re-execute.
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import Definitions, definitions, in_process_executor

from qbo_pipeline.defs.alerts import AlertWebhook, check_alerts, sync_run_failure_alert
from qbo_pipeline.defs.assets import build_all_assets
from qbo_pipeline.defs.events import build_webhook_sensor
from qbo_pipeline.defs.health import (
    connection_health_job,
    connection_health_schedule,
    connections,
    refresh_tokens_valid,
)
from qbo_pipeline.defs.jobs import (
    build_incremental_schedule,
    build_reconciliation_schedule,
    sync_job,
)
from qbo_pipeline.defs.partitions import build_sync_partitions, sync_start_date
from qbo_pipeline.defs.resources import QBOConnection, SourceDatabase, StateDatabase
from qbo_pipeline.defs.sensors import realm_partitions_sensor
from qbo_pipeline.specs import SpecSet, load_specs

MAPPING_SPECS_VARIABLE = "QBO_MAPPING_SPECS"
# Who owns the assets, as Dagster shows owners: e-mail addresses or `team:<name>`, by commas.
ASSET_OWNERS_VARIABLE = "QBO_ASSET_OWNERS"
DEFAULT_MAPPING_SPECS = Path("mapping_specs")
CHECKOUT_MAPPING_SPECS = Path(__file__).resolve().parents[2] / "mapping_specs"


def mapping_specs_directory(environ: Mapping[str, str] | None = None) -> Path:
    """Where the specs are: the variable if set, else ./mapping_specs, else the checkout's."""
    environ = os.environ if environ is None else environ
    if configured := environ.get(MAPPING_SPECS_VARIABLE):
        return Path(configured)
    if DEFAULT_MAPPING_SPECS.is_dir() or not CHECKOUT_MAPPING_SPECS.is_dir():
        return DEFAULT_MAPPING_SPECS
    return CHECKOUT_MAPPING_SPECS


def load_pipeline_specs(environ: Mapping[str, str] | None = None) -> SpecSet:
    """The mapping specs the definitions are built from; a bad spec raises SpecError."""
    return load_specs(mapping_specs_directory(environ))


def asset_owners(environ: Mapping[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    return [owner.strip() for owner in environ.get(ASSET_OWNERS_VARIABLE, "").split(",")
            if owner.strip()]


def resources_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"source_db": SourceDatabase.from_env(environ),
            "state_db": StateDatabase.from_env(environ),
            "qbo": QBOConnection.from_env(environ),
            "alerts": AlertWebhook.from_env(environ)}


def build_defs(specs: SpecSet | None = None, resources: Mapping[str, Any] | None = None,
               environ: Mapping[str, str] | None = None) -> Definitions:
    """Every asset, check, job, schedule and sensor of the pipeline, from the specs."""
    specs = specs if specs is not None else load_pipeline_specs(environ)
    start = sync_start_date(environ)
    resources = dict(resources) if resources is not None else resources_from_env(environ)
    # Alerts go where the environment says, unless the caller (the CLI) routes them itself.
    resources.setdefault("alerts", AlertWebhook.from_env(environ))
    return Definitions(
        assets=[*build_all_assets(specs, build_sync_partitions(start), start,
                                  asset_owners(environ)), connections],
        asset_checks=[refresh_tokens_valid],
        jobs=[sync_job, connection_health_job],
        schedules=[build_incremental_schedule(start, specs.settings),
                   build_reconciliation_schedule(start, specs.settings),
                   connection_health_schedule],
        sensors=[realm_partitions_sensor, build_webhook_sensor(specs, start, specs.settings),
                 sync_run_failure_alert, check_alerts],
        # Every run in one process, a backfill's included (its job is Dagster's implicit asset
        # job). Nothing goes through an IO manager: each spec's stages hand each other their
        # rows inside its one step, and a run is re-run whole (its writes are idempotent).
        executor=in_process_executor,
        resources=resources,
    )


@definitions
def defs() -> Definitions:
    # Dagster loads a code location several times in one process (a `dagster job execute`
    # five times): build it once per process, from the settings of that process.
    return _defs_of_this_process()


@functools.cache
def _defs_of_this_process() -> Definitions:
    built = build_defs()
    # What is loaded now (every module, the definitions) lives as long as the process: out of
    # the garbage collector's sight, it is not scanned again by each collection of a run, nor
    # by the full collection at exit, which alone took a second of a six-second run.
    gc.freeze()
    return built

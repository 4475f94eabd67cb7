"""The Dagster definitions load, validate and read like the design says: the asset graph per
spec, references between specs, resources without secrets, the schedule per realm."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    EnvVar,
    PartitionKeyRange,
    RunRequest,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from qbo_pipeline.defs.alerts import CHECK_ALERTS_SENSOR_NAME, RUN_FAILURE_SENSOR_NAME
from qbo_pipeline.defs.assets import (
    CONFLICTS_CHECK,
    DUPLICATES_CHECK,
    PULL_STAGES,
    PUSH_STAGES,
    VALIDATION_CHECK,
    AssetContext,
    build_entity_assets,
    markdown_table,
)
from qbo_pipeline.defs.definitions import build_defs, load_pipeline_specs
from qbo_pipeline.defs.health import (
    CONNECTIONS_KEY,
    HEALTH_JOB_NAME,
    HEALTH_SCHEDULE_NAME,
    REFRESH_TOKENS_CHECK,
)
from qbo_pipeline.defs.jobs import SCHEDULE_NAME, build_incremental_schedule
from qbo_pipeline.defs.partitions import (
    DEFAULT_SYNC_START_DATE,
    INCREMENTAL_MODE,
    MODE_TAG,
    REALM_DIMENSION,
    REALM_TAG,
    SYNC_START_DATE_VARIABLE,
    build_sync_partitions,
    sync_partition_key,
    sync_start_date,
)
from qbo_pipeline.defs.resources import (
    DEFAULT_SOURCE_URL,
    DEFAULT_STATE_URL,
    EMULATOR_CLIENT_SECRET,
    EMULATOR_URL,
    QBO_CLIENT_SECRET_VARIABLE,
    QBOConnection,
    SourceDatabase,
    StateDatabase,
)
from qbo_pipeline.defs.sensors import realm_partitions_sensor
from qbo_pipeline.specs import load_specs
from qbo_pipeline.state import disconnect_realm, set_cursor, set_realm_setting, upsert_realm

REPO_ROOT = Path(__file__).resolve().parents[2]
specs = load_pipeline_specs()
defs = build_defs(specs)
SPEC_NAMES = ("bank_account", "bill", "client", "contractor", "credit_memo",
              "credit_memo_applied", "deposit", "employee", "expense", "hard_cost",
              "invoice", "payment", "project", "service", "term", "time_entry",
              "tracking_class", "vendor")


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """A temporary instance with a reference, as schedules need (an ephemeral one has none)."""
    with instance_for_test() as temporary:
        yield temporary


def dagster_command() -> list[str]:
    found = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    return [found] if Path(found).exists() else [sys.executable, "-m", "dagster"]


def test_workspace_validates() -> None:
    result = subprocess.run([*dagster_command(), "definitions", "validate", "-w",
                             "workspace.yaml"], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stderr + result.stdout


def _graph() -> dict[AssetKey, set[AssetKey]]:
    asset_graph = defs.resolve_asset_graph()
    return {key: set(asset_graph.get(key).parent_keys)
            for key in asset_graph.get_all_asset_keys()}


def test_each_spec_has_the_assets_of_its_direction_grouped_by_spec() -> None:
    graph = _graph()
    expected = {AssetKey([name, stage]) for stage in PUSH_STAGES for name in SPEC_NAMES}
    expected |= {AssetKey(["invoice", "applied"])}  # invoices pull their balance back
    # Vendors, terms, classes and services are kept both ways; clients and projects for a
    # company whose customers_sync is "when used" (seed 004), so their applied asset is there
    # for all.
    expected |= {AssetKey([name, "applied"]) for name in ("vendor", "term", "tracking_class",
                                                           "service", "client", "project")}
    # Imported from QBO only: accounts, tax codes, the bills changed in the last two weeks.
    expected |= {AssetKey([name, stage]) for stage in PULL_STAGES
                 for name in ("account", "tax_code", "imported_bill")}
    # The connected companies, never materialized: their refresh token check rides on it.
    expected |= {CONNECTIONS_KEY}
    assert set(graph) == expected
    groups = {spec.key: spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert groups[AssetKey(["invoice", "diff"])] == "invoice"
    assert {groups[AssetKey(["client", stage])] for stage in PUSH_STAGES} == {"client"}


def test_assets_read_in_the_ui_stage_kind_description_tags_and_owners() -> None:
    owned = build_defs(specs, environ={"QBO_ASSET_OWNERS": "team:finance-data, ana@example.com"})
    by_key = {spec.key: spec for spec in owned.resolve_all_asset_specs()}
    synced = by_key[AssetKey(["client", "synced"])]
    assert synced.kinds == {"quickbooks"}
    assert synced.tags["qbo/stage"] == "synced" and synced.tags["qbo/entity"] == "Customer"
    assert synced.owners == ["team:finance-data", "ana@example.com"]
    assert "written to QBO Customer" in (synced.description or "")
    assert by_key[AssetKey(["client", "validated"])].kinds == {"pandera"}
    assert all(spec.owners == [] for spec in defs.resolve_all_asset_specs())  # none by default


def test_each_spec_flows_source_to_synced() -> None:
    graph = _graph()
    for name in SPEC_NAMES:
        assert AssetKey([name, "source"]) in graph[AssetKey([name, "validated"])]
        assert AssetKey([name, "validated"]) in graph[AssetKey([name, "qbo_snapshot"])]
        assert graph[AssetKey([name, "diff"])] == {AssetKey([name, "validated"]),
                                                   AssetKey([name, "qbo_snapshot"])}
        assert graph[AssetKey([name, "synced"])] == {AssetKey([name, "diff"])}


def test_references_put_the_upstream_sync_first() -> None:
    graph = _graph()
    assert graph[AssetKey(["client", "source"])] == set()
    assert graph[AssetKey(["project", "source"])] == {AssetKey(["client", "applied"])}
    # Services an invoice or a time entry names are created through service.yaml when QBO
    # lacks them (seed 003): the service spec syncs (and applies) first.
    assert graph[AssetKey(["invoice", "source"])] == {AssetKey(["project", "applied"]),
                                                      AssetKey(["service", "applied"])}
    assert graph[AssetKey(["time_entry", "source"])] == {AssetKey(["employee", "synced"]),
                                                         AssetKey(["contractor", "synced"]),
                                                         AssetKey(["project", "applied"]),
                                                         AssetKey(["service", "applied"])}
    # A payment is applied to its invoice (seed 004), on the invoice's customer.
    assert graph[AssetKey(["payment", "source"])] == {AssetKey(["invoice", "applied"]),
                                                      AssetKey(["project", "applied"])}
    # A write-off's credit memo, then the payment applying it to the invoice (seed 002).
    assert graph[AssetKey(["credit_memo", "source"])] == {AssetKey(["project", "applied"])}
    assert graph[AssetKey(["credit_memo_applied", "source"])] == {
        AssetKey(["credit_memo", "synced"]), AssetKey(["invoice", "applied"]),
        AssetKey(["project", "applied"])}
    # An expense's payee is its vendor (seed 001); a bill's lines are for projects (seed 004).
    assert graph[AssetKey(["expense", "source"])] == {AssetKey(["vendor", "applied"])}
    assert graph[AssetKey(["bill", "source"])] == {AssetKey(["vendor", "applied"]),
                                                   AssetKey(["project", "applied"])}
    # Seed 002: a deposit slip goes into its bank account; a hard cost is paid from one, to a
    # vendor, for a matter.
    assert graph[AssetKey(["deposit", "source"])] == {AssetKey(["bank_account", "synced"])}
    assert graph[AssetKey(["hard_cost", "source"])] == {AssetKey(["bank_account", "synced"]),
                                                        AssetKey(["project", "applied"]),
                                                        AssetKey(["vendor", "applied"])}


def test_the_steps_carry_the_quarantine_conflict_and_duplicate_checks() -> None:
    client = build_entity_assets(specs["client"], AssetContext(
        specs, build_sync_partitions(sync_start_date()), sync_start_date()))
    check_keys = list(client.check_keys)
    assert sorted((k.asset_key.to_user_string(), k.name) for k in check_keys) == [
        ("client/synced", DUPLICATES_CHECK), ("client/synced", CONFLICTS_CHECK),
        ("client/validated", VALIDATION_CHECK)]


def test_the_alerts_and_the_connection_health_check_are_registered() -> None:
    """The token check runs alone in its job (never in a sync), daily; the alert sensors
    run by default, since an alert nobody switched on alerts nobody."""
    health = defs.resolve_job_def(HEALTH_JOB_NAME)
    assert {(k.asset_key, k.name) for k in health.asset_layer.asset_graph.asset_check_keys} == {
        (CONNECTIONS_KEY, REFRESH_TOKENS_CHECK)}
    sync = defs.resolve_job_def("sync_job").asset_layer.asset_graph
    assert REFRESH_TOKENS_CHECK not in {key.name for key in sync.asset_check_keys}
    assert defs.resolve_schedule_def(HEALTH_SCHEDULE_NAME).cron_schedule == "0 6 * * *"
    for name in (RUN_FAILURE_SENSOR_NAME, CHECK_ALERTS_SENSOR_NAME):
        assert defs.resolve_sensor_def(name).default_status.value == "RUNNING"


def test_local_defaults_without_environment() -> None:
    assert SourceDatabase.from_env({}).url == DEFAULT_SOURCE_URL
    assert StateDatabase.from_env({}).url == DEFAULT_STATE_URL
    assert ".qbo_pipeline/" in DEFAULT_SOURCE_URL and ".qbo_pipeline/" in DEFAULT_STATE_URL
    connection = QBOConnection.from_env({})
    assert connection.base_url == EMULATOR_URL
    assert connection.settings().company_url("1") == f"{EMULATOR_URL}/v3/company/1"


def test_client_secret_is_read_through_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "real-client-secret-value"
    monkeypatch.setenv(QBO_CLIENT_SECRET_VARIABLE, secret)
    connection = QBOConnection.from_env({QBO_CLIENT_SECRET_VARIABLE: secret,
                                         "QBO_BASE_URL": "https://quickbooks.api.intuit.com/"})
    # Dagster keeps the variable's name in its config; the value is read when a run starts.
    assert connection.client_secret == EnvVar(QBO_CLIENT_SECRET_VARIABLE)
    assert secret not in repr(connection)
    settings = connection.process_config_and_initialize().settings()
    assert settings.client_secret.get_secret_value() == secret
    assert secret not in repr(settings)
    assert settings.base_url == "https://quickbooks.api.intuit.com"


def test_no_client_secret_is_a_config_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found from outside: with QBO_CLIENT_SECRET unset, the emulator's development secret was
    a config value, stored in every Dagster run snapshot. It is now none: the settings fall
    back to it when a run starts, for the emulator's own app only."""
    monkeypatch.delenv(QBO_CLIENT_SECRET_VARIABLE, raising=False)
    connection = QBOConnection.from_env({})
    assert connection.client_secret is None
    assert EMULATOR_CLIENT_SECRET not in repr(connection)
    settings = connection.process_config_and_initialize().settings()
    assert settings.client_secret.get_secret_value() == EMULATOR_CLIENT_SECRET
    real_app = QBOConnection.from_env({"QBO_BASE_URL": "https://quickbooks.api.intuit.com",
                                       "QBO_CLIENT_ID": "ABcd1234"})
    with pytest.raises(ValueError, match=f"QBO app ABcd1234: set {QBO_CLIENT_SECRET_VARIABLE}"):
        real_app.settings()


def test_sync_start_date_setting() -> None:
    assert sync_start_date({}) == date.fromisoformat(DEFAULT_SYNC_START_DATE)
    assert sync_start_date({SYNC_START_DATE_VARIABLE: "2025-03-01"}) == date(2025, 3, 1)
    with pytest.raises(ValueError, match=f"{SYNC_START_DATE_VARIABLE}='March'.*YYYY-MM-DD"):
        sync_start_date({SYNC_START_DATE_VARIABLE: "March"})


def test_schedule_requests_one_tagged_run_per_realm_and_a_first_sync_over_every_month(
        instance: DagsterInstance, tmp_path: Path) -> None:
    """A company that synced before gets an incremental run on the month of the tick; one
    that never did gets one run over every month since its start (its first sync reads all
    of them, so all of them show as synced afterwards)."""
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    with state.sessions().begin() as session:
        upsert_realm(session, "realm-a")
        upsert_realm(session, "realm-b", sync_start_date=date(2025, 6, 15))
        set_cursor(session, "realm-a", "client",
                   change_window_end=datetime(2026, 3, 4, tzinfo=UTC))
    instance.add_dynamic_partitions(REALM_DIMENSION, ["realm-a", "realm-b"])
    tick = datetime(2026, 3, 4, 0, 15, tzinfo=UTC)
    schedule = build_incremental_schedule(sync_start_date())
    with build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                resources={"state_db": state}) as context:
        requests = list(schedule(context))
    assert all(isinstance(request, RunRequest) for request in requests)
    first, second = requests
    assert (first.partition_key, first.tags[REALM_TAG], first.tags[MODE_TAG]) == (
        sync_partition_key("realm-a", tick.date()), "realm-a", INCREMENTAL_MODE)
    assert second.partition_key is None and second.tags[REALM_TAG] == "realm-b"
    assert second.partition_key_range == PartitionKeyRange("2025-06|realm-b", "2026-03|realm-b")
    assert schedule.cron_schedule == "*/15 * * * *"
    assert defs.get_schedule_def(SCHEDULE_NAME).cron_schedule == schedule.cron_schedule


def test_schedule_skips_without_realms(instance: DagsterInstance, tmp_path: Path) -> None:
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    with build_schedule_context(instance=instance, resources={"state_db": state},
                                scheduled_execution_time=datetime(2026, 3, 4, tzinfo=UTC)
                                ) as context:
        [skipped] = list(build_incremental_schedule(sync_start_date())(context))
    assert isinstance(skipped, SkipReason)
    assert "no QBO company is connected" in (skipped.skip_message or "")


def test_schedule_leaves_out_the_companies_on_manual_sync(instance: DagsterInstance,
                                                          tmp_path: Path) -> None:
    """Seed 004: a company on manual sync is synced only record by record, by a person."""
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    with state.sessions().begin() as session:
        upsert_realm(session, "realm-manual", settings={"sync_mode": "manual"})
        upsert_realm(session, "realm-auto")
    instance.add_dynamic_partitions(REALM_DIMENSION, ["realm-manual", "realm-auto"])
    schedule = build_incremental_schedule(sync_start_date(), specs.settings)
    tick = datetime(2026, 3, 4, 0, 15, tzinfo=UTC)
    with build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                resources={"state_db": state}) as context:
        [request] = list(schedule(context))
    assert isinstance(request, RunRequest) and request.tags[REALM_TAG] == "realm-auto"
    with state.sessions().begin() as session:
        set_realm_setting(session, "realm-auto", "sync_mode", "manual")
    with build_schedule_context(instance=instance, scheduled_execution_time=tick,
                                resources={"state_db": state}) as context:
        [skipped] = list(schedule(context))
    assert isinstance(skipped, SkipReason)
    assert "every connected company syncs manually" in (skipped.skip_message or "")


def test_markdown_preview_escapes_and_cuts() -> None:
    table = markdown_table(pd.DataFrame({"name": ["a|b", "x" * 60], "n": [1, 2]}), limit=1)
    assert table.splitlines()[:3] == ["| name | n |", "| --- | --- |", "| a\\|b | 1 |"]
    assert "_1 more rows_" in table
    assert markdown_table(pd.DataFrame({"name": []})) == "_no rows_"


def test_realm_sensor_follows_connections(instance: DagsterInstance, tmp_path: Path) -> None:
    state = StateDatabase(url=f"sqlite:///{tmp_path / 'state.sqlite'}")
    with state.sessions().begin() as session:
        upsert_realm(session, "realm-new")
        upsert_realm(session, "realm-gone")
        disconnect_realm(session, "realm-gone")
    instance.add_dynamic_partitions(REALM_DIMENSION, ["realm-gone"])
    context = build_sensor_context(instance=instance, resources={"state_db": state})
    result = realm_partitions_sensor(context)
    assert isinstance(result, SensorResult)
    requests = result.dynamic_partitions_requests or []
    assert [(type(r).__name__, list(r.partition_keys)) for r in requests] == [
        ("AddDynamicPartitionsRequest", ["realm-new"]),
        ("DeleteDynamicPartitionsRequest", ["realm-gone"]),
    ]
    instance.add_dynamic_partitions(REALM_DIMENSION, ["realm-new"])
    instance.delete_dynamic_partition(REALM_DIMENSION, "realm-gone")
    assert isinstance(realm_partitions_sensor(build_sensor_context(
        instance=instance, resources={"state_db": state})), SkipReason)


def test_a_spec_that_also_pulls_gets_its_applied_asset_after_synced(tmp_path: Path) -> None:
    """A two-way spec (the shipped client, both ways for a company whose customers_sync is
    "when used"): source -> validated -> qbo_snapshot -> diff -> synced -> applied, and the
    specs that refer to it wait for its last asset."""
    graph = build_defs(load_specs(REPO_ROOT / "mapping_specs")).resolve_asset_graph()
    parents = {key: set(graph.get(key).parent_keys) for key in graph.get_all_asset_keys()}
    applied = AssetKey(["client", "applied"])
    assert parents[applied] == {AssetKey(["client", "diff"]), AssetKey(["client", "synced"])}
    assert parents[AssetKey(["client", "diff"])] == {AssetKey(["client", "validated"]),
                                                     AssetKey(["client", "qbo_snapshot"])}
    assert applied in parents[AssetKey(["project", "source"])]

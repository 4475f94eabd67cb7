"""Keeps the `realm` dynamic partitions equal to the connected QBO companies in the state DB:
connecting a company adds its partition, disconnecting removes it."""

from __future__ import annotations

from dagster import (
    AddDynamicPartitionsRequest,
    DefaultSensorStatus,
    DeleteDynamicPartitionsRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from qbo_pipeline.defs.partitions import realm_partitions
from qbo_pipeline.defs.resources import StateDatabase
from qbo_pipeline.state import list_realms


@sensor(minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Adds a realm partition per connected QBO company, removes disconnected ones.")
def realm_partitions_sensor(context: SensorEvaluationContext,
                            state_db: StateDatabase) -> SensorResult | SkipReason:
    with state_db.sessions().begin() as session:
        connected = {realm.realm_id for realm in list_realms(session)}
    assert realm_partitions.name is not None
    known = set(context.instance.get_dynamic_partitions(realm_partitions.name))
    added, removed = sorted(connected - known), sorted(known - connected)
    if not added and not removed:
        return SkipReason(f"{len(known)} connected realm(s), no change")
    requests: list[AddDynamicPartitionsRequest | DeleteDynamicPartitionsRequest] = []
    if added:
        requests.append(realm_partitions.build_add_request(added))
    if removed:
        requests.append(realm_partitions.build_delete_request(removed))
    return SensorResult(dynamic_partitions_requests=requests)

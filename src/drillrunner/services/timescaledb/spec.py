"""The timescaledb service: what drill knows of it, in one place."""

from __future__ import annotations

from typing import ClassVar

from drillrunner.services.spec import ServiceSettings, ServiceSpec


class PostgresSettings(ServiceSettings):
    service: ClassVar[str] = "timescaledb"
    synchronous: bool = True  # synchronous_standby_names = "*" on the primary


SPEC = ServiceSpec(
    name="timescaledb",
    summary=("TimescaleDB (PostgreSQL): a primary and a synchronous streaming replica, WAL "
             "archive, base backups and point-in-time restore"),
    ports={"tsdb-0": 0, "tsdb-1": 1, "tsdb-pitr": 2},
    actions=("probes", "faults", "workload", "checks", "backup", "repair"),
    local="local:PostgresDeployment",
    kind="kind:KindPostgresOps",
    settings=PostgresSettings,
    audit="audit",
)

"""The timescaledb service: what drill knows of it, in one place."""

from __future__ import annotations

from typing import ClassVar, Literal

from drillrunner.services.spec import ServiceSettings, ServiceSpec


class PostgresSettings(ServiceSettings):
    service: ClassVar[str] = "timescaledb"
    synchronous: bool = True  # Patroni's synchronous_mode
    # Bytes a replica may lag behind the last known leader position and still be promoted.
    maximum_lag_on_failover: int = 1048576
    # Patroni's timings (seconds): the leader lock lives `ttl`, renewed every `loop_wait`.
    # Tighter than Patroni's defaults (30/10/10) so a drill's failover takes seconds; 20 is
    # the smallest ttl Patroni accepts.
    ttl: int = 20
    loop_wait: int = 1
    retry_timeout: int = 4
    failsafe_mode: bool = False  # keep the leader up while the DCS is unreachable
    # Where WAL is archived: pgBackRest's repository, or "none" (archive_command /bin/true).
    wal_archive: Literal["pgbackrest", "none"] = "pgbackrest"
    # Another patroni executable to run (Debian's /usr/bin/patroni, say); empty: the pinned
    # PyPI Patroni `make deps` installs (patroni_install.py says why).
    patroni: str = ""


SPEC = ServiceSpec(
    name="timescaledb",
    summary=("TimescaleDB (PostgreSQL) under Patroni: a leader and a synchronous standby, "
             "failover by Patroni with etcd as its DCS, backups and point-in-time restore"),
    ports={"tsdb-0": 0, "tsdb-1": 1, "tsdb-pitr": 2, "tsdb-0-api": 3, "tsdb-1-api": 4,
           "tsdb-router": 5},
    depends_on=("etcd",),
    actions=("probes", "faults", "workload", "checks", "backup", "repair", "ha"),
    local="local:PostgresDeployment",
    kind="kind:KindPostgresOps",
    settings=PostgresSettings,
    audit="audit",
    roles="status_roles",
)

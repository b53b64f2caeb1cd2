"""The feast service: what drill knows of it, in one place."""

from __future__ import annotations

from drillrunner.services.spec import ServiceSpec

SPEC = ServiceSpec(
    name="feast",
    summary=("Feast: the feature server over a Redis online store and a PostgreSQL registry and "
             "offline store"),
    ports={"feast-0": 50},
    actions=("probes", "faults", "workload", "checks", "observe", "restore"),
    local="local:FeastDeployment",
    kind="kind:KindFeastOps",
    depends_on=("timescaledb", "redis"),
)

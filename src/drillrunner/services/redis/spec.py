"""The redis service: what drill knows of it, in one place."""

from __future__ import annotations

from typing import ClassVar, Literal

from drillrunner.services.spec import ServiceSettings, ServiceSpec


class RedisSettings(ServiceSettings):
    service: ClassVar[str] = "redis"
    appendonly: bool = True
    appendfsync: Literal["always", "everysec", "no"] = "everysec"


SPEC = ServiceSpec(
    name="redis",
    summary=("Redis: a primary, a replica and three sentinels (quorum 2), RDB and AOF persistence"),
    ports={"redis-0": 10, "redis-1": 11, "sentinel-0": 20, "sentinel-1": 21, "sentinel-2": 22},
    actions=("probes", "faults", "workload", "actions", "backup"),
    local="local:RedisDeployment",
    kind="kind:KindRedisOps",
    settings=RedisSettings,
    audit="audit",
)

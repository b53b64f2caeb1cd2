"""The nats service: what drill knows of it, in one place."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from drillrunner.services.spec import ServiceSettings, ServiceSpec


class NatsSettings(ServiceSettings):
    service: ClassVar[str] = "nats"
    stream_replicas: int = Field(default=3, ge=1, le=3)  # of the drill streams


SPEC = ServiceSpec(
    name="nats",
    summary="NATS JetStream: a 3-node cluster with replicated file streams",
    ports={"nats-0": 40, "nats-1": 41, "nats-2": 42, "nats-0-cluster": 43,
           "nats-1-cluster": 44, "nats-2-cluster": 45, "nats-0-monitor": 46,
           "nats-1-monitor": 47, "nats-2-monitor": 48},
    actions=("probes", "faults", "workload", "actions", "checks"),
    local="local:NatsDeployment",
    kind="kind:KindNatsOps",
    settings=NatsSettings,
    audit="audit",
)

"""The kafka service: what drill knows of it, in one place."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from drillrunner.services.spec import ServiceSettings, ServiceSpec


class KafkaSettings(ServiceSettings):
    service: ClassVar[str] = "kafka"
    min_insync_replicas: int = Field(default=2, ge=1, le=3)  # of the drill topics (RF 3)


SPEC = ServiceSpec(
    name="kafka",
    summary="Kafka: a 3-node KRaft quorum (combined broker and controller nodes)",
    ports={"kafka-0": 30, "kafka-1": 31, "kafka-2": 32, "kafka-0-controller": 33,
           "kafka-1-controller": 34, "kafka-2-controller": 35},
    actions=("probes", "faults", "workload", "actions", "checks"),
    local="local:KafkaDeployment",
    kind="kind:KindKafkaOps",
    settings=KafkaSettings,
    audit="audit",
)

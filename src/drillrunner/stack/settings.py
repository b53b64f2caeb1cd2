"""Settings of the local stack: ports and the knobs drills compare (sync vs async, AOF)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drillrunner.core.errors import StackError, UsageError

# Each member's port is port_base + its offset: one number moves the whole stack.
PORT_OFFSETS = {
    "tsdb-0": 0,
    "tsdb-1": 1,
    "tsdb-pitr": 2,
    "redis-0": 10,
    "redis-1": 11,
    "sentinel-0": 20,
    "sentinel-1": 21,
    "sentinel-2": 22,
    # Kafka: client listener, then the KRaft controller listener of each node.
    "kafka-0": 30,
    "kafka-1": 31,
    "kafka-2": 32,
    "kafka-0-controller": 33,
    "kafka-1-controller": 34,
    "kafka-2-controller": 35,
    # NATS: client port, cluster (route) port, HTTP monitoring port of each node.
    "nats-0": 40,
    "nats-1": 41,
    "nats-2": 42,
    "nats-0-cluster": 43,
    "nats-1-cluster": 44,
    "nats-2-cluster": 45,
    "nats-0-monitor": 46,
    "nats-1-monitor": 47,
    "nats-2-monitor": 48,
    "feast-0": 50,
    "oms-0": 60,
}


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PostgresSettings(_Settings):
    synchronous: bool = True  # synchronous_standby_names = '*' on the primary


class RedisSettings(_Settings):
    appendonly: bool = True
    appendfsync: Literal["always", "everysec", "no"] = "everysec"


class KafkaSettings(_Settings):
    min_insync_replicas: int = Field(default=2, ge=1, le=3)  # of the drill topics (RF 3)


class NatsSettings(_Settings):
    stream_replicas: int = Field(default=3, ge=1, le=3)  # of the drill streams


class OmsSettings(_Settings):
    """The order service's safety behaviour; each switch-off is a broken variant."""

    environment: Literal["production", "staging", "development"] = "staging"
    simulation: bool = False
    simulation_guard: bool = True  # refuse to start in simulation mode in production
    kill_switch_default: Literal["engaged", "disengaged"] = "engaged"
    kill_switch_fail_closed: bool = True  # unreadable kill-switch state -> reject orders
    circuit_breaker: bool = True
    readiness_checks_dependencies: bool = True


class StackSettings(_Settings):
    port_base: int = Field(default=17000, ge=1024, le=65000)
    timescaledb: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    nats: NatsSettings = Field(default_factory=NatsSettings)
    oms: OmsSettings = Field(default_factory=OmsSettings)

    def port(self, member: str) -> int:
        return self.port_base + PORT_OFFSETS[member]

    def with_overrides(self, assignments: list[str]) -> StackSettings:
        """Apply `--set section.key=value` assignments (values parsed as JSON, else text)."""
        data = self.model_dump()
        for item in assignments:
            key, sep, raw = item.partition("=")
            if not sep:
                raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. redis.appendonly=false")
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            node = data
            *parents, leaf = key.split(".")
            for p in parents:
                if not isinstance(node.get(p), dict):
                    raise UsageError(f"--set {item!r}: unknown setting {key!r}")
                node = node[p]
            if leaf not in node:
                raise UsageError(f"--set {item!r}: unknown setting {key!r}")
            node[leaf] = value
        try:
            return StackSettings.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise UsageError(f"--set: {where}: {err['msg']}") from None


def settings_file(state: Path) -> Path:
    return state / "stack.json"


def load_settings(state: Path) -> StackSettings | None:
    path = settings_file(state)
    if not path.exists():
        return None
    try:
        return StackSettings.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise StackError(f"{path}: unreadable stack settings ({exc.error_count()} errors); "
                         "run 'drill stack down' and 'drill stack up'") from None


def save_settings(state: Path, settings: StackSettings) -> None:
    path = settings_file(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(settings.model_dump_json(indent=2))

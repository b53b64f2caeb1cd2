"""Settings of the local stack: ports and the knobs drills compare (sync vs async, AOF)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drillrunner.errors import StackError, UsageError

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
}


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PostgresSettings(_Settings):
    synchronous: bool = True  # synchronous_standby_names = '*' on the primary


class RedisSettings(_Settings):
    appendonly: bool = True
    appendfsync: Literal["always", "everysec", "no"] = "everysec"


class StackSettings(_Settings):
    port_base: int = Field(default=17000, ge=1024, le=65000)
    timescaledb: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)

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

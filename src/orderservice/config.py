"""The service's configuration files, as the deployment writes them.

`oms.yaml` (mode 0600: it holds the connection settings) names the two others, which
mirror the review's `config/kill-switch.yaml` and `config/circuit-breakers.yaml`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _seconds(value: Any) -> Any:
    """'500ms' and '2s' as seconds; numbers and anything else go to pydantic as they are."""
    if isinstance(value, str) and value.strip().endswith("ms"):
        return float(value.strip()[:-2]) / 1000
    if isinstance(value, str) and value.strip().endswith("s"):
        return float(value.strip()[:-1])
    return value


Duration = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]


KILL_SWITCH_KEY = "oms:kill-switch"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SwitchState(StrEnum):
    ENGAGED = "engaged"  # orders blocked
    DISENGAGED = "disengaged"


class KillSwitchConfig(_Model):
    """kill-switch.yaml: the default applies while Redis holds no state."""

    default: SwitchState = SwitchState.ENGAGED
    redis_key: str = KILL_SWITCH_KEY
    # An unreadable state (Redis unreachable) blocks orders; false is the broken variant.
    fail_closed: bool = True
    read_timeout: Duration = 0.15  # per Redis round trip (each sentinel, then the master)


class BreakerConfig(_Model):
    """One breaker of circuit-breakers.yaml."""

    enabled: bool = True
    failure_threshold: int = Field(default=3, ge=1)  # consecutive failures or timeouts...
    window: Duration = 10.0  # ...within this many seconds open the breaker
    cooldown: Duration = 2.0  # open -> half-open after this long
    call_timeout: Duration = 0.5  # a call slower than this counts as a failure


class BreakersFile(_Model):
    postgres: BreakerConfig = Field(default_factory=BreakerConfig)


class RedisTarget(_Model):
    sentinels: list[tuple[str, int]]
    master_name: str


class OmsConfig(_Model):
    """oms.yaml."""

    host: str = "127.0.0.1"
    port: int
    environment: Literal["production", "staging", "development"] = "staging"
    simulation: bool = False
    simulation_guard: bool = True
    readiness_checks_dependencies: bool = True
    postgres_dsn: str  # libpq conninfo; never logged
    redis: RedisTarget
    kill_switch_file: Path
    circuit_breakers_file: Path
    orders_table: str = "oms_orders"
    # Non-secret settings laid over this file (a ConfigMap on Kubernetes, so changing them
    # never touches the Secret holding the DSN).
    settings_file: Path | None = None


def _load(path: Path) -> object:
    return yaml.safe_load(path.read_text()) or {}


def load(path: Path) -> tuple[OmsConfig, KillSwitchConfig, BreakersFile]:
    raw = _load(path)
    overlay = raw.get("settings_file") if isinstance(raw, dict) else None
    if overlay:
        extra = _load(Path(str(overlay)))
        if not isinstance(extra, dict):
            raise ValueError(f"{overlay}: not a YAML mapping")
        raw = {**raw, **extra}  # type: ignore[dict-item]
    oms = OmsConfig.model_validate(raw)
    switch = KillSwitchConfig.model_validate(_load(oms.kill_switch_file))
    breakers = BreakersFile.model_validate(_load(oms.circuit_breakers_file))
    return oms, switch, breakers

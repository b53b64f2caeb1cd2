"""The schema of scenario and drill files (apiVersion drill/v1)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drillrunner.core.units import Duration

NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
ACTION = r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$"
CLAIM = r"^C\d{2}-[a-z0-9-]+$"
# Keys a step may carry beside its action name; they belong to the engine, not the action.
STEP_KEYS = {"after"}
DEFAULT_BLAST_RADIUS = 1  # members a scenario may disrupt at once unless it says more
DEFAULT_TIMEOUT = 600.0  # a whole scenario, steady state to checks (rollback always finishes)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(Model):
    name: str = Field(pattern=NAME)
    title: str = Field(min_length=1, max_length=200)
    claims: list[str] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="after")
    def _claim_ids(self) -> Metadata:
        import re

        for claim in self.claims:
            if not re.match(CLAIM, claim):
                raise ValueError(f"claim {claim!r} is not a claim id such as C01-ha-probes")
        return self


class Tolerance(Model):
    """What a probe's value must be: numbers within min/max (durations allowed), or equal."""

    min: Duration | None = None
    max: Duration | None = None
    equals: bool | int | float | str | None = None

    def holds(self, value: Any) -> bool:
        if self.equals is not None:
            return bool(value == self.equals)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        if self.equals is not None:
            return f"== {self.equals}"
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts) or "any value"


class ProbeStep(Model):
    probe: str = Field(pattern=ACTION)
    args: dict[str, Any] = Field(default_factory=dict)
    tolerance: Tolerance | None = None

    def holds(self, value: Any) -> bool:
        """Without a tolerance a probe must return a true value."""
        return self.tolerance.holds(value) if self.tolerance else value is True


def _single_action(data: Any) -> Any:
    """`{name: {args}, after: 1s}` -> `{name: name, args: {args}, after: 1s}`."""
    if not isinstance(data, dict) or "name" in data:
        return data
    names = [k for k in data if k not in STEP_KEYS]
    if len(names) != 1:
        raise ValueError(
            "a step is a mapping with exactly one action name, e.g. "
            "'- redis.kill_primary: {signal: KILL}'"
            + (f"; found {', '.join(map(str, names))}" if names else "")
        )
    name = names[0]
    rest = {k: v for k, v in data.items() if k != name}
    return {"name": name, "args": data[name] if data[name] is not None else {}, **rest}


class ActionStep(Model):
    name: str = Field(pattern=ACTION)
    args: dict[str, Any] = Field(default_factory=dict)
    after: Duration = Field(default=0.0, le=3600)

    _flatten = model_validator(mode="before")(_single_action)


class WorkloadStep(Model):
    name: str = Field(pattern=ACTION)
    args: dict[str, Any] = Field(default_factory=dict)

    _flatten = model_validator(mode="before")(_single_action)


class CheckStep(Model):
    check: str = Field(pattern=ACTION)
    args: dict[str, Any] = Field(default_factory=dict)


class Slo(Model):
    rto: Duration | None = None
    lost_acknowledged_writes: int = Field(default=0, ge=0)


DEFAULT_STABLE = 3.0  # seconds of consecutive successes before a recovery counts


class Recovery(Model):
    """How the engine waits for recovery after the faults: polling, never sleeping.

    `stable`: the recovery must last this long (every operation of every workload
    succeeding, the recovery probes holding) before it counts; a single success is not one.
    `expect_outage`: the faults must show on the workload (failed or stalled operations),
    else the scenario is inconclusive; false when the scenario expects no client-visible
    outage (a restore into a separate member, a restart nobody is using).
    `rto_from`: the RTO is measured by this fault (its `rto_seconds`: a restore's duration,
    a restart until ready) instead of from the workload's unavailability."""

    timeout: Duration = Field(default=60.0, gt=0, le=3600)
    stable: Duration = Field(default=DEFAULT_STABLE, ge=0.5, le=600)
    expect_outage: bool = True
    rto_from: str | None = Field(default=None, pattern=ACTION)
    probes: list[ProbeStep] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _settle_renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "settle" in data:
            raise ValueError("recovery.settle is now recovery.stable: how long the recovery "
                             "must last (at least 0.5s; default 3s)")
        return data


class Scenario(Model):
    apiVersion: Literal["drill/v1"]
    kind: Literal["Scenario"]
    metadata: Metadata
    slo: Slo = Field(default_factory=Slo)
    # How many members the scenario's faults may disrupt at once (they stay disrupted until
    # rollback); "all" allows a whole tier. Checked by `drill validate`.
    blast_radius: Annotated[int, Field(ge=1)] | Literal["all"] | None = None
    # Overall deadline: past it the scenario ends as `error` and is still rolled back.
    timeout: Duration = Field(default=DEFAULT_TIMEOUT, gt=0, le=86400)
    steady_state: list[ProbeStep] = Field(default_factory=list)
    workload: list[WorkloadStep] = Field(default_factory=list)
    # A scenario injects something: without a fault there is nothing to verify.
    faults: list[ActionStep] = Field(min_length=1)
    recovery: Recovery = Field(default_factory=Recovery)
    verify: list[CheckStep] = Field(default_factory=list)
    rollback: list[ActionStep] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rto_from_a_fault(self) -> Scenario:
        names = [f.name for f in self.faults]
        if self.recovery.rto_from is not None and self.recovery.rto_from not in names:
            raise ValueError(f"recovery.rto_from {self.recovery.rto_from!r} is not one of the "
                             f"scenario's faults ({', '.join(names)})")
        return self


class DrillMetadata(Model):
    name: str = Field(pattern=NAME)
    title: str = Field(min_length=1, max_length=200)
    description: str = ""


class Drill(Model):
    apiVersion: Literal["drill/v1"]
    kind: Literal["Drill"]
    metadata: DrillMetadata
    scenarios: list[str] = Field(min_length=1)


class Claim(Model):
    id: str = Field(pattern=CLAIM)
    text: str = Field(min_length=1)
    source: str = Field(min_length=1)


class ClaimRegistry(Model):
    apiVersion: Literal["drill/v1"]
    kind: Literal["ClaimRegistry"]
    claims: list[Claim] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ClaimRegistry:
        ids = [c.id for c in self.claims]
        if dupes := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"claim ids appear twice: {', '.join(dupes)}")
        return self

"""Actions that do nothing measurable, to time the engine's own overhead (engine_overhead)."""

from __future__ import annotations

from drillrunner.core.actions import action, check, fault, probe
from drillrunner.core.verdicts import CheckResult, FaultResult, Verdict
from drillrunner.engine.context import RunContext


class NoopTarget:
    """Stands in for a target: the no-op actions never ask it anything."""

    name = "noop"

    def describe(self) -> dict[str, str]:
        return {"target": "noop"}


@probe("noop.ready")
def ready(ctx: RunContext) -> bool:
    return True


@fault("noop.fault", undo="noop.undo")
def noop_fault(ctx: RunContext) -> FaultResult:
    ctx.will_undo("noop.undo")
    # It measures its own (empty) outage, so the scenario has a recovery to judge.
    return FaultResult(summary="nothing done", measurements={"rto_seconds": 0.0})


@action("noop.undo")
def undo(ctx: RunContext) -> FaultResult:
    return FaultResult(summary="nothing undone")


@check("noop.pass")
def passes(ctx: RunContext) -> CheckResult:
    return CheckResult(verdict=Verdict.PASS, summary="nothing to check")

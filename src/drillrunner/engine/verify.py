"""The scenario's checks (its `verify:` steps, and the SLO check its slo.rto implies)."""

from __future__ import annotations

from typing import Any

from drillrunner.core.verdicts import CheckResult, Verdict
from drillrunner.engine.context import RunContext
from drillrunner.engine.invoke import Invoker, error_text
from drillrunner.evidence.events import Event
from drillrunner.model.scenario import Scenario

SLO_CHECK = "recovered_within_slo"


def run_checks(invoker: Invoker, ctx: RunContext, s: Scenario) -> list[tuple[str, CheckResult]]:
    listed = [(step.check, step.args) for step in s.verify]
    steps = list(listed)
    if s.slo.rto is not None and SLO_CHECK not in {c for c, _ in steps}:
        steps.append((SLO_CHECK, {}))  # slo.rto is always judged, listed or not
    out = []
    for name, args in steps:
        result = run_check(invoker, ctx, name, args)
        invoker.journal.append(Event.CHECK, scenario=ctx.scenario, check=name,
                               implied=(name, args) not in listed,
                               **result.model_dump(mode="json"))
        out.append((name, result))
    return out


def run_check(invoker: Invoker, ctx: RunContext, name: str, args: dict[str, Any]
              ) -> CheckResult:
    """A check that crashes (or is missing, or returns no verdict) gives no verdict."""
    call = invoker.attempt(ctx, name, args)
    if call.error is None and isinstance(call.value, CheckResult):
        return call.value
    error = call.error or TypeError(f"check returned {type(call.value).__name__}")
    return CheckResult(verdict=Verdict.UNKNOWN, summary=f"the check crashed: {error_text(error)}")

"""Probes as the scenario's phases run them: each reading journaled with whether it held."""

from __future__ import annotations

from typing import Any

from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.invoke import Invoker, error_text
from drillrunner.evidence.events import Event
from drillrunner.model.scenario import ProbeStep


class BaselineNotMet(Exception):
    """The steady state did not hold in time (or the workload could not write)."""


class Probes:
    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker

    def read(self, ctx: RunContext, step: ProbeStep) -> tuple[bool, Any]:
        """Whether the probe holds, and what it read (a crash reads as its error)."""
        call = self.invoker.attempt(ctx, step.probe, step.args)
        if call.error is not None:
            return False, "error: " + error_text(call.error)
        return step.holds(call.value), call.value

    def hold(self, ctx: RunContext, steps: list[ProbeStep], event: Event) -> bool:
        """Reads every probe (none is skipped, so each reading is journaled)."""
        ok = True
        for step in steps:
            holds, value = self.read(ctx, step)
            self.invoker.journal.append(
                event, scenario=ctx.scenario, probe=step.probe, value=value, holds=holds,
                tolerance=step.tolerance.describe() if step.tolerance else "is true")
            ok = ok and holds
        return ok

    def await_steady(self, ctx: RunContext, steps: list[ProbeStep], event: Event,
                     grace: float) -> None:
        try:
            poll_until(lambda: self.hold(ctx, steps, event), timeout=grace, interval=0.5,
                       what="the steady state")
        except WaitTimeout:
            raise BaselineNotMet("the steady state did not hold; nothing was injected") from None

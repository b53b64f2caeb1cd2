"""After the faults: wait for the recovery to be seen and to last, then measure it."""

from __future__ import annotations

import time
from typing import Any

from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.engine import workloads
from drillrunner.engine.context import RunContext
from drillrunner.engine.outcome import (
    LASTING_OPS,
    ScenarioRecovery,
    from_fault,
    from_workloads,
)
from drillrunner.engine.probes import Probes
from drillrunner.engine.recovery import lasting_success
from drillrunner.evidence.events import Event
from drillrunner.model.scenario import Scenario


def wait(probes: Probes, ctx: RunContext, s: Scenario) -> None:
    """Poll until every workload has succeeded without a failure for `stable` seconds
    and the recovery probes (without workloads: the steady state) have held as long.
    Journals `recovered` or `recovery-timeout`."""
    faults = ctx.history.faults()
    since = faults[-1].returned if faults else time.monotonic()
    stable = s.recovery.stable
    steps = s.recovery.probes or ([] if ctx.threads else s.steady_state)
    held_since: list[float] = []

    def recovered() -> bool:
        workloads.check(ctx)
        for t in ctx.threads:
            if not lasting_success(ctx.history.ops(t.name), since, LASTING_OPS, stable):
                return False
        if not steps:
            return True
        if not probes.hold(ctx, steps, Event.RECOVERY_PROBE):
            held_since.clear()
            return False
        held_since[:] = held_since or [time.monotonic()]
        return time.monotonic() - held_since[0] >= stable

    started = time.monotonic()
    journal = probes.invoker.journal
    try:
        poll_until(recovered, timeout=s.recovery.timeout, interval=0.05, what="recovery")
        journal.append(Event.RECOVERED, scenario=ctx.scenario,
                       waited=time.monotonic() - started, stable=stable)
    except WaitTimeout:
        journal.append(Event.RECOVERY_TIMEOUT, scenario=ctx.scenario,
                       timeout=s.recovery.timeout)


def measure(ctx: RunContext, s: Scenario, measured: dict[str, dict[str, Any]]
            ) -> ScenarioRecovery:
    """The scenario's recovery: measured by the fault `rto_from` names, else seen by the
    workloads from the first fault on."""
    faults = ctx.history.faults()
    names = [t.name for t in ctx.threads]
    if s.recovery.rto_from is not None:
        workloads_ok = all(lasting_success(ctx.history.ops(n), faults[-1].returned,
                                           LASTING_OPS, s.recovery.stable) for n in names)
        return from_fault(s.recovery.rto_from, measured.get(s.recovery.rto_from, {}),
                          s.recovery.timeout, workloads_ok)
    t_fault = faults[0].invoked if faults else time.monotonic()
    return from_workloads(ctx.history, names, t_fault, s.recovery.stable,
                          time.monotonic() - t_fault)

"""The scenario's workloads: started before the faults, watched while they act, stopped
before the checks read the store back."""

from __future__ import annotations

from drillrunner.core.units import parse_rate
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpStatus
from drillrunner.engine.invoke import Invoker
from drillrunner.engine.probes import BaselineNotMet
from drillrunner.evidence.events import Event
from drillrunner.model.scenario import WorkloadStep

WARMUP_OPS = 3
WARMUP_TIMEOUT = 15.0
DEFAULT_RATE = 20


def start(invoker: Invoker, ctx: RunContext, steps: list[WorkloadStep]) -> None:
    """Each workload's client is made by its catalog function, then run at its rate."""
    for step in steps:
        args = {k: v for k, v in step.args.items() if k != "rate"}
        rate = parse_rate(step.args.get("rate", DEFAULT_RATE))
        client = invoker.call(ctx, step.name, args)
        invoker.journal.append(Event.WORKLOAD_START, scenario=ctx.scenario, workload=step.name,
                               rate=rate, args=args)
        ctx.start_workload(step.name, client, rate)


def warm_up(ctx: RunContext) -> None:
    """Every workload has written a few times before any fault: else nothing it sees
    afterwards could be told from a workload that never worked."""

    def warm() -> bool:
        check(ctx)
        return all(
            sum(1 for o in ctx.history.ops(t.name) if o.status == OpStatus.OK) >= WARMUP_OPS
            for t in ctx.threads)

    try:
        poll_until(warm, timeout=WARMUP_TIMEOUT, interval=0.02,
                   what="the workload's first writes")
    except WaitTimeout:
        raise BaselineNotMet("the workload could not write before any fault") from None


def check(ctx: RunContext) -> None:
    """A workload whose thread crashed ends the scenario as an error."""
    for t in ctx.threads:
        if t.error is not None:
            raise RuntimeError(f"workload {t.name} crashed: {t.error!r}")


def stop(invoker: Invoker, ctx: RunContext) -> None:
    for t in ctx.threads:
        if t.running:
            t.stop()
            invoker.journal.append(Event.WORKLOAD_STOP, scenario=ctx.scenario,
                                   workload=t.name, ops=len(ctx.history.ops(t.name)))

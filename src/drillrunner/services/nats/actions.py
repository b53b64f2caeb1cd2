"""Idempotent recovery actions (the faults' undos and rollbacks): each waits until every
node is healthy and every replica of the drill stream is current again."""

from __future__ import annotations

from drillrunner.core.actions import action
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import monotonic
from drillrunner.engine.context import RunContext
from drillrunner.services.common import resume_if_paused
from drillrunner.services.nats.ops import nats_ops
from drillrunner.services.nats.topology import SERVICE, wait_ready


def _ready(ctx: RunContext, timeout: float, started: float) -> tuple[str | None, float]:
    r = wait_ready(ctx.target, nats_ops(ctx.target), timeout=timeout)
    return r.stream_leader, monotonic() - started


@action("nats.restart_member")
def restart_member(ctx: RunContext, member: str, timeout: Duration = 60.0) -> FaultResult:
    """Start the node if it is down (it rejoins the cluster and catches its replica up)
    and wait until the stream is fully replicated. Does nothing to a running node."""
    ref = ctx.target.member(SERVICE, member)
    t0 = monotonic()
    started = not ctx.target.is_running(ref)
    if started:
        ctx.target.start(ref)
    return _rejoined(ctx, member, "started" if started else "already running:", started,
                     timeout, t0)


@action("nats.resume_member")
def resume_member(ctx: RunContext, member: str, timeout: Duration = 60.0) -> FaultResult:
    """Resume a paused node, then wait until the stream is fully replicated."""
    ref = ctx.target.member(SERVICE, member)
    t0 = monotonic()
    resumed = resume_if_paused(ctx, ref)
    return _rejoined(ctx, member, "resumed" if resumed else "not paused:", resumed,
                     timeout, t0)


def _rejoined(ctx: RunContext, member: str, verb: str, acted: bool, timeout: float,
              t0: float) -> FaultResult:
    """Wait until the stream is fully replicated again; report what was done to `member`."""
    leader, seconds = _ready(ctx, timeout, t0)
    return FaultResult(
        summary=f"{verb} {member}; stream leader {leader}, replicas current after "
                f"{seconds:.2f}s",
        members=[member] if acted else [], detail={"stream_leader": leader},
        measurements={"rejoin_seconds": round(seconds, 3)},
    )


@action("nats.restart_all")
def restart_all(ctx: RunContext, timeout: Duration = 60.0) -> FaultResult:
    """Resume paused nodes, start every node that is down, then wait for readiness."""
    t0 = monotonic()
    touched = []
    for ref in nats_ops(ctx.target).servers():
        if resume_if_paused(ctx, ref):  # first: on kind a paused pod may be NotReady too
            touched.append(ref.name)
        elif not ctx.target.is_running(ref):
            ctx.target.start(ref)
            touched.append(ref.name)
    leader, seconds = _ready(ctx, timeout, t0)
    return FaultResult(
        summary=f"started or resumed {', '.join(touched) or 'nothing'}; stream leader "
                f"{leader}, replicas current after {seconds:.2f}s",
        members=touched, detail={"stream_leader": leader},
        measurements={"rejoin_seconds": round(seconds, 3)},
    )

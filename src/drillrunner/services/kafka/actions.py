"""Idempotent recovery actions (the faults' undos and rollbacks): each waits until the
node rejoined and the drill partition has all its replicas in sync again."""

from __future__ import annotations

from drillrunner.core.actions import action
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import monotonic
from drillrunner.engine.context import RunContext
from drillrunner.services.common import resume_if_paused
from drillrunner.services.kafka.ops import kafka_ops
from drillrunner.services.kafka.topology import SERVICE, wait_ready
from drillrunner.targets.base import MemberRef

TIMEOUT = 120.0  # a JVM restart on a busy 2-core machine plus the ISR catching up


def _ready(ctx: RunContext, timeout: float, done: list[str], verb: str) -> FaultResult:
    started = monotonic()
    r = wait_ready(ctx.target, kafka_ops(ctx.target), timeout=timeout)
    waited = monotonic() - started
    return FaultResult(
        summary=f"{verb} {', '.join(done) or 'nothing'}; ISR {r.isr} full after "
                f"{waited:.1f}s, leader node {r.leader}, controller {r.controller}",
        members=done, detail={"leader": r.leader, "isr": r.isr, "controller": r.controller},
        measurements={"rejoin_seconds": waited})


def _start(ctx: RunContext, member: MemberRef) -> bool:
    if ctx.target.is_running(member):
        return False
    ctx.target.start(member)
    return True


@action("kafka.restart_member")
def restart_member(ctx: RunContext, member: str, timeout: Duration = TIMEOUT) -> FaultResult:
    """Start the node if it is down, then wait until every broker is registered, the
    quorum has a leader and the drill partition's ISR is full. Nothing to a running node."""
    ref = ctx.target.member(SERVICE, member)
    started = [member] if _start(ctx, ref) else []
    return _ready(ctx, timeout, started, "started")


@action("kafka.restart_all")
def restart_all(ctx: RunContext, timeout: Duration = TIMEOUT) -> FaultResult:
    """Start every node that is down (resuming paused ones), then wait for readiness."""
    done = []
    for ref in ctx.target.members(SERVICE):
        if resume_if_paused(ctx, ref) or _start(ctx, ref):
            done.append(ref.name)
    return _ready(ctx, timeout, done, "started or resumed")


@action("kafka.resume_member")
def resume_member(ctx: RunContext, member: str, timeout: Duration = TIMEOUT) -> FaultResult:
    """Resume a paused node, then wait until the ISR is full again."""
    ref = ctx.target.member(SERVICE, member)
    resumed = [member] if resume_if_paused(ctx, ref) else []
    return _ready(ctx, timeout, resumed, "resumed")


@action("kafka.resume_all")
def resume_all(ctx: RunContext, wait: bool = True, timeout: Duration = TIMEOUT) -> FaultResult:
    """Resume every paused node. With `wait` (the undo), wait until the ISR is full; as a
    step inside a scenario's faults, `wait: false` resumes and returns at once."""
    resumed = []
    for ref in ctx.target.members(SERVICE):
        if resume_if_paused(ctx, ref):
            resumed.append(ref.name)
    if not wait:
        return FaultResult(summary=f"resumed {', '.join(resumed) or 'nothing'}",
                           members=resumed)
    return _ready(ctx, timeout, resumed, "resumed")

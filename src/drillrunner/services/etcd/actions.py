"""Idempotent recovery actions (the faults' undos): each waits until the cluster has a
quorum and a single leader again."""

from __future__ import annotations

from drillrunner.core.actions import action
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import monotonic, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.services.common import resume_if_paused
from drillrunner.services.etcd import client
from drillrunner.services.etcd.topology import SERVICE, leader
from drillrunner.targets.base import MemberRef


def _settled(ctx: RunContext, members: list[MemberRef], verb: str, timeout: float,
             t0: float) -> FaultResult:
    """Wait until every member serves quorum reads and one leader is agreed on."""
    def ready() -> MemberRef | None:
        for m in ctx.target.members(SERVICE):
            try:
                client.quorum_read(m)
            except (client.Unreachable, TimeoutError, RuntimeError):
                return None
        return leader(ctx.target)

    elected = poll_until(ready, timeout=timeout, interval=0.1,
                         what="every etcd member to serve with one leader")
    seconds = monotonic() - t0
    names = [m.name for m in members]
    return FaultResult(summary=f"{verb} {', '.join(names) or 'nothing'}; leader "
                               f"{elected.name} after {seconds:.2f}s",
                       members=names, detail={"leader": elected.name},
                       measurements={"rejoin_seconds": round(seconds, 3)})


@action("etcd.restart_member")
def restart_member(ctx: RunContext, member: str, timeout: Duration = 60.0) -> FaultResult:
    """Start the member if it is down (it rejoins with its data), then wait until the
    cluster serves with one leader. Does nothing to a running member."""
    ref = ctx.target.member(SERVICE, member)
    t0 = monotonic()
    started = not ctx.target.is_running(ref)
    if started:
        ctx.target.start(ref)
    return _settled(ctx, [ref] if started else [], "started", timeout, t0)


@action("etcd.resume_member")
def resume_member(ctx: RunContext, member: str, timeout: Duration = 60.0) -> FaultResult:
    """Resume a paused member, then wait until the cluster serves with one leader."""
    ref = ctx.target.member(SERVICE, member)
    t0 = monotonic()
    resumed = resume_if_paused(ctx, ref)
    return _settled(ctx, [ref] if resumed else [], "resumed", timeout, t0)


@action("etcd.restart_all")
def restart_all(ctx: RunContext, timeout: Duration = 60.0) -> FaultResult:
    """Start every member that is down, then wait until the cluster serves again."""
    t0 = monotonic()
    down = [m for m in ctx.target.members(SERVICE) if not ctx.target.is_running(m)]
    for m in down:
        ctx.target.start(m)
    return _settled(ctx, down, "started", timeout, t0)

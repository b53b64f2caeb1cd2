"""Faults on the etcd cluster. Each journals its undo (naming members by name) first."""

from __future__ import annotations

from drillrunner.core.actions import fault
from drillrunner.core.errors import ActionFailed
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext
from drillrunner.services.common import kill_named, pause_named
from drillrunner.services.etcd.topology import SERVICE, leader, member_roles
from drillrunner.targets.base import Signal


@fault("etcd.kill_leader", undo="etcd.restart_member")
def kill_leader(ctx: RunContext, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill the Raft leader (found live); the other two must elect a new one. Undo:
    restart it (it rejoins as a follower)."""
    current = leader(ctx.target)
    if current is None:
        raise ActionFailed("etcd has no single leader now: nothing to kill")
    return kill_named(ctx, SERVICE, current.name, signal, member_roles)


@fault("etcd.kill_member", undo="etcd.restart_member")
def kill_member(ctx: RunContext, member: str, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill one named member. Undo: restart it."""
    return kill_named(ctx, SERVICE, member, signal, member_roles)


@fault("etcd.pause_member", undo="etcd.resume_member")
def pause_member(ctx: RunContext, member: str) -> FaultResult:
    """Freeze one member (SIGSTOP): it keeps its connections but answers nothing, like a
    stalled VM; a frozen leader is replaced after the election timeout. Undo: resume it."""
    return pause_named(ctx, SERVICE, member, member_roles)


@fault("etcd.lose_quorum", undo="etcd.restart_all", disrupts=2)  # a majority of 3
def lose_quorum(ctx: RunContext, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill a majority of the members (all but one): the survivor must stop serving
    writes and linearizable reads, as no leader can be elected. Undo: start them all."""
    members = ctx.target.members(SERVICE)
    lost = members[: len(members) // 2 + 1]
    ctx.will_undo("etcd.restart_all")
    for m in lost:
        ctx.target.kill(m, signal)
    names = [m.name for m in lost]
    return FaultResult(summary=f"killed {len(lost)} of {len(members)} etcd members "
                               f"({', '.join(names)}) with SIG{signal}",
                       members=names, detail={"signal": str(signal)})

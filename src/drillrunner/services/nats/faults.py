"""Faults on the NATS cluster. Each journals its undo (naming the member) first.

The stream leader is always found live, from the stream's cluster info (its server name
is the member name). A network partition is not offered on the local target: every node
shares 127.0.0.1, so a firewall rule cannot cut one node's outgoing routes without
cutting the others' too (see the report).
"""

from __future__ import annotations

from drillrunner.core.actions import fault
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext
from drillrunner.services.common import kill_named
from drillrunner.services.nats.ops import nats_ops
from drillrunner.services.nats.topology import SERVICE, member_roles, stream_leader
from drillrunner.services.paused import wait_stopped
from drillrunner.targets.base import MemberRef, Signal


@fault("nats.kill_stream_leader", undo="nats.restart_member")
def kill_stream_leader(ctx: RunContext, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill the node leading the drill stream; the other replicas must elect a new
    leader. Undo: restart it and wait until its replica is current again."""
    leader = stream_leader(ctx.target)
    ctx.will_undo("nats.restart_member", member=leader.name)
    ctx.target.kill(leader, signal)
    return FaultResult(summary=f"killed stream leader {leader.name} with SIG{signal}",
                       members=[leader.name], detail={"signal": str(signal)})


@fault("nats.destroy_stream_leader", undo="nats.restart_member")
def destroy_stream_leader(ctx: RunContext) -> FaultResult:
    """Kill -9 the stream leader and delete its JetStream store (a lost volume): only
    the other replicas still hold the messages. Undo: restart it (empty, it catches up
    from the others, if there are any)."""
    ops = nats_ops(ctx.target)
    leader = stream_leader(ctx.target, ops)
    ctx.will_undo("nats.restart_member", member=leader.name)
    ctx.target.kill(leader, Signal.KILL)
    ops.wipe(leader.name)
    return FaultResult(summary=f"killed stream leader {leader.name} and deleted its store",
                       members=[leader.name],
                       detail={"replicas": ops.stream_spec().replicas})


@fault("nats.kill_member", undo="nats.restart_member")
def kill_member(ctx: RunContext, member: str, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill one named node. Undo: restart it."""
    return kill_named(ctx, SERVICE, member, signal, member_roles)


def _pause(ctx: RunContext, ref: MemberRef, role: str | None) -> FaultResult:
    ctx.will_undo("nats.resume_member", member=ref.name)
    ctx.target.pause(ref)
    wait_stopped(ctx.target, ref)
    return FaultResult(summary=f"paused {ref.name} ({role})", members=[ref.name],
                       detail={"role": role})


@fault("nats.pause_member", undo="nats.resume_member")
def pause_member(ctx: RunContext, member: str) -> FaultResult:
    """Freeze one node (SIGSTOP): it keeps its sockets open but answers nothing, like a
    stalled VM. Undo: resume it and wait until its replica is current."""
    return _pause(ctx, ctx.target.member(SERVICE, member), member_roles(ctx.target).get(member))


@fault("nats.pause_stream_leader", undo="nats.resume_member")
def pause_stream_leader(ctx: RunContext) -> FaultResult:
    """Freeze the node leading the drill stream (SIGSTOP). Undo: resume it."""
    return _pause(ctx, stream_leader(ctx.target), "stream-leader")

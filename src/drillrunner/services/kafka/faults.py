"""Faults on the Kafka quorum. Each journals its undo (naming members by name) first; the
members are found from the cluster's metadata and Raft state, never assumed."""

from __future__ import annotations

from drillrunner.core.actions import fault
from drillrunner.core.errors import ActionFailed
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext
from drillrunner.services.kafka.ops import kafka_ops
from drillrunner.services.kafka.topology import (
    SERVICE,
    active_controller,
    member_roles_with,
    partition_followers,
    partition_leader,
)
from drillrunner.services.paused import wait_stopped
from drillrunner.targets.base import MemberRef, Signal


def _kill(ctx: RunContext, member: MemberRef, signal: Signal, what: str) -> FaultResult:
    roles = member_roles_with(ctx.target, kafka_ops(ctx.target))
    ctx.will_undo("kafka.restart_member", member=member.name)
    ctx.target.kill(member, signal)
    return FaultResult(summary=f"killed {what} {member.name} with SIG{signal}",
                       members=[member.name],
                       detail={"signal": str(signal), "roles_before": roles})


@fault("kafka.kill_leader", undo="kafka.restart_member")
def kill_leader(ctx: RunContext, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill the leader of the drill partition (from the cluster's metadata). The controller
    must fence it and elect an in-sync follower. Undo: restart it; it rejoins as a follower."""
    ops = kafka_ops(ctx.target)
    return _kill(ctx, partition_leader(ctx.target, ops), signal, "partition leader")


@fault("kafka.kill_controller", undo="kafka.restart_member")
def kill_controller(ctx: RunContext, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill the active KRaft controller (the Raft leader a majority follows). The other
    two must elect a new one. Undo: restart it."""
    ops = kafka_ops(ctx.target)
    controller = active_controller(ctx.target, ops)
    if controller is None:
        raise ActionFailed("the KRaft quorum has no active controller to kill")
    return _kill(ctx, controller, signal, "active controller")


@fault("kafka.kill_member", undo="kafka.restart_member")
def kill_member(ctx: RunContext, member: str, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill one named node. Undo: restart it."""
    return _kill(ctx, ctx.target.member(SERVICE, member), signal, "node")


def _pause(ctx: RunContext, members: list[MemberRef]) -> None:
    for ref in members:
        ctx.target.pause(ref)
    for ref in members:
        wait_stopped(ctx.target, ref)


@fault("kafka.pause_member", undo="kafka.resume_member")
def pause_member(ctx: RunContext, member: str) -> FaultResult:
    """Freeze one node (SIGSTOP): it holds its connections but answers nothing, like a
    stalled VM. Undo: resume it."""
    ref = ctx.target.member(SERVICE, member)
    role = member_roles_with(ctx.target, kafka_ops(ctx.target)).get(member)
    ctx.will_undo("kafka.resume_member", member=member)
    _pause(ctx, [ref])
    return FaultResult(summary=f"paused {member} ({role})", members=[member],
                       detail={"role": role})


@fault("kafka.pause_followers", undo="kafka.resume_all", disrupts=2)
def pause_followers(ctx: RunContext) -> FaultResult:
    """Freeze every follower of the drill partition (SIGSTOP), so they stop replicating
    while the leader goes on: lagging replicas, as under a GC pause or a stalled disk. On
    combined nodes this also freezes their controllers. Undo: resume every paused node."""
    ops = kafka_ops(ctx.target)
    followers = partition_followers(ctx.target, ops)
    if not followers:
        raise ActionFailed(f"{ops.topic}-{ops.partition} has no live follower to pause")
    roles = member_roles_with(ctx.target, ops)
    ctx.will_undo("kafka.resume_all")
    _pause(ctx, followers)
    names = [f.name for f in followers]
    return FaultResult(summary=f"paused the followers {', '.join(names)}", members=names,
                       detail={"roles_before": roles})

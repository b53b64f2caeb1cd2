"""Faults on the Redis tier. Each journals its undo (naming members by name) first."""

from __future__ import annotations

from drillrunner.core.actions import fault
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext
from drillrunner.services.common import kill_named, pause_named
from drillrunner.services.redis.lifecycle import current_primary
from drillrunner.services.redis.ops import redis_ops
from drillrunner.services.redis.topology import SERVICE, member_roles
from drillrunner.targets.base import Signal


@fault("redis.kill_primary", undo="redis.restart_member")
def kill_primary(ctx: RunContext, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill the current primary (found live, never assumed); the sentinels must elect
    the replica. Undo: restart it as a replica of whoever is primary then."""
    ops = redis_ops(ctx.target)
    primary = current_primary(ctx.target, ops)
    ctx.will_undo("redis.restart_member", member=primary.name)
    ctx.target.kill(primary, signal)
    return FaultResult(summary=f"killed primary {primary.name} with SIG{signal}",
                       members=[primary.name], detail={"signal": str(signal)})


@fault("redis.kill_member", undo="redis.restart_member")
def kill_member(ctx: RunContext, member: str, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill one named member (server or sentinel). Undo: restart it."""
    return kill_named(ctx, SERVICE, member, signal, member_roles)


@fault("redis.pause_member", undo="redis.resume_member")
def pause_member(ctx: RunContext, member: str) -> FaultResult:
    """Freeze one member (SIGSTOP): it holds its connections but answers nothing, like
    a stalled VM. Undo: resume it."""
    return pause_named(ctx, SERVICE, member, member_roles)


@fault("redis.kill_all", undo="redis.restart_all", disrupts="all")
def kill_all(ctx: RunContext, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill every member of the tier, sentinels too (a power loss): what survives is only
    what the servers persisted. Undo: start them all again."""
    ops = redis_ops(ctx.target)
    ctx.will_undo("redis.restart_all")
    # Sentinels first: none must start a failover while the servers go down.
    members = [*ops.sentinels(), *ops.servers()]
    for m in members:
        ctx.target.kill(m, signal)
    return FaultResult(summary=f"killed all {len(members)} Redis members with SIG{signal}",
                       members=[m.name for m in members], detail={"signal": str(signal)})


@fault("redis.destroy_tier", undo="redis.recover_tier", disrupts="all")
def destroy_tier(ctx: RunContext) -> FaultResult:
    """Kill every member and delete the servers' data and the sentinels' state (a lost
    volume). Undo: restore the last snapshot if the data is still gone, else restart."""
    ops = redis_ops(ctx.target)
    snap = ctx.stash.get("redis.snapshot")
    ctx.will_undo("redis.recover_tier", snapshot=snap["path"] if snap else None)
    members = [*ops.sentinels(), *ops.servers()]
    for m in members:
        ops.hold(m.name)  # kept down once killed (kind recreates a deleted pod at once)
        ctx.target.kill(m, Signal.KILL)
    for m in members:
        ops.wipe(m.name)
    return FaultResult(summary="killed every Redis member and deleted its data",
                       members=[m.name for m in members])

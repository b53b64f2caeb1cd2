"""Idempotent recovery actions (the faults' undos and rollbacks)."""

from __future__ import annotations

from pathlib import Path

from drillrunner.core.actions import action
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext
from drillrunner.services.redis.lifecycle import start_all, start_member
from drillrunner.services.redis.ops import redis_ops
from drillrunner.services.redis.topology import SERVICE, Role, member_role, wait_ready


@action("redis.restart_member")
def restart_member(ctx: RunContext, member: str, timeout: Duration = 60.0) -> FaultResult:
    """Start the member if it is down (a server rejoins as a replica of the current
    primary) and wait until the tier is ready. Does nothing to a running member."""
    ops = redis_ops(ctx.target)
    started = start_member(ctx.target, ops, ctx.target.member(SERVICE, member))
    r = wait_ready(ops.servers(), ops.sentinels(), timeout=timeout, ops=ops)
    return FaultResult(
        summary=f"{'started' if started else 'already running:'} {member}; primary {r.master}",
        members=[member] if started else [], detail={"primary": r.master},
    )


@action("redis.restart_all")
def restart_all(ctx: RunContext, timeout: Duration = 60.0) -> FaultResult:
    """Start every member that is not running, then wait for a primary with a linked
    replica and sentinels that agree on it."""
    started, r = start_all(ctx.target, redis_ops(ctx.target), timeout)
    return FaultResult(summary=f"started {', '.join(started) or 'nothing'}; primary {r.master}",
                       members=started, detail={"primary": r.master})


@action("redis.resume_member")
def resume_member(ctx: RunContext, member: str, timeout: Duration = 60.0) -> FaultResult:
    """Resume a paused member, then wait until the tier is ready (a resumed old primary
    is demoted by Sentinel)."""
    ops = redis_ops(ctx.target)
    ref = ctx.target.member(SERVICE, member)
    resumed = member_role(ctx.target, ref) is Role.PAUSED
    if ctx.target.is_running(ref):
        ctx.target.resume(ref)  # idempotent; on kind no PID shows a member as "paused"
    r = wait_ready(ops.servers(), ops.sentinels(), timeout=timeout, ops=ops)
    return FaultResult(summary=f"{'resumed' if resumed else 'not paused:'} {member}; "
                       f"primary {r.master}", members=[member] if resumed else [])


@action("redis.recover_tier")
def recover_tier(ctx: RunContext, snapshot: str | None = None,
                 timeout: Duration = 60.0) -> FaultResult:
    """Bring a destroyed tier back without ever overwriting data: restore `snapshot` only
    when every server is down and empty; otherwise start what is down."""
    from drillrunner.services.redis.backup import restore_into_fresh_tier

    ops = redis_ops(ctx.target)
    servers = ops.servers()
    empty = all(not ctx.target.is_running(s) and not ops.has_data(s.name) for s in servers)
    if snapshot and empty and Path(snapshot, "dump.rdb").exists():
        seconds, master = restore_into_fresh_tier(ctx.target, ops, Path(snapshot), timeout)
        return FaultResult(summary=f"restored {snapshot} into a fresh tier in {seconds:.2f}s",
                           members=[m.name for m in [*servers, *ops.sentinels()]],
                           detail={"primary": master}, measurements={"restore_seconds": seconds})
    started, r = start_all(ctx.target, ops, timeout)
    return FaultResult(summary=f"started {', '.join(started) or 'nothing'}; primary {r.master}",
                       members=started, detail={"primary": r.master})

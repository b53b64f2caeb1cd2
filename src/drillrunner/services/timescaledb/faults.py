"""Faults: kill, pause and promote members. Each journals its undo before it acts."""

from __future__ import annotations

from drillrunner.core.actions import fault
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import monotonic
from drillrunner.engine.context import RunContext
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.ops import SERVICE, RoutesPrimary, pg_ops
from drillrunner.services.timescaledb.repair import walreceiver_pid, walsender_pid
from drillrunner.services.timescaledb.roles import Role, member_roles, replicas, the_primary
from drillrunner.targets.base import Signal


@fault("timescaledb.kill_primary", undo="timescaledb.rebuild_replica")
def kill_primary(ctx: RunContext, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill the current primary's whole process group (postmaster and backends)."""
    primary = the_primary(ctx.target)
    ctx.will_undo("timescaledb.rebuild_replica", member=primary.name)
    pg_ops(ctx.target).kill(primary.name, signal)
    return FaultResult(summary=f"killed primary {primary.name} with SIG{signal}",
                       members=[primary.name], detail={"signal": str(signal)},
                       measurements={"killed_at": monotonic()})


@fault("timescaledb.kill_member", undo="timescaledb.rebuild_replica")
def kill_member(ctx: RunContext, member: str, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill one member, whatever its role."""
    ctx.target.member(SERVICE, member)  # raises on an unknown name
    role = member_roles(ctx.target)[member]
    ctx.will_undo("timescaledb.rebuild_replica", member=member)
    pg_ops(ctx.target).kill(member, signal)
    return FaultResult(summary=f"killed {member} ({role}) with SIG{signal}", members=[member],
                       detail={"signal": str(signal), "role": role})


@fault("timescaledb.pause_member", undo="timescaledb.resume_member")
def pause_member(ctx: RunContext, member: str) -> FaultResult:
    """Freeze every process of a member (SIGSTOP): it keeps its sockets but answers nothing."""
    ctx.target.member(SERVICE, member)  # raises on an unknown name
    role = member_roles(ctx.target)[member]
    ctx.will_undo("timescaledb.resume_member", member=member)
    pg_ops(ctx.target).pause(member)
    return FaultResult(summary=f"paused {member} ({role})", members=[member],
                       detail={"role": role})


@fault("timescaledb.pause_walreceiver", undo="timescaledb.resume_walreceiver")
def pause_walreceiver(
    ctx: RunContext, member: str | None = None, stall_sender: bool = True
) -> FaultResult:
    """Stall a replica's WAL stream: freeze its walreceiver (and, with `stall_sender`, the
    primary's walsender feeding it) so the replica stays up but falls behind.

    Freezing the receiver alone stalls nothing until the kernel's socket buffers (megabytes
    on loopback) fill: WAL already in them still reaches the replica after a failover.
    Freezing the sender too keeps unshipped WAL on the primary, as a stalled link would.
    """
    ops = pg_ops(ctx.target)
    roles = member_roles(ctx.target)
    candidates = replicas(roles)
    if member is not None and member not in candidates:
        raise ActionFailed(f"{member} is not a running replica (replicas: {candidates})")
    name = member or (candidates[0] if candidates else None)
    if name is None:
        raise ActionFailed("no running replica whose walreceiver could be paused")
    pid = walreceiver_pid(ops, name)
    if pid is None:
        raise ActionFailed(f"{name} has no walreceiver (it is not streaming)")
    primary = sender_pid = None
    if stall_sender:
        primary = the_primary(ctx.target).name
        sender_pid = walsender_pid(ops, primary, name)
        if sender_pid is None:
            raise ActionFailed(f"{primary} has no walsender streaming to {name}")
    ctx.will_undo("timescaledb.resume_walreceiver", member=name, pid=pid, primary=primary,
                  sender_pid=sender_pid)
    if primary is not None and sender_pid is not None:
        ops.pause_process(primary, sender_pid)
    ops.pause_process(name, pid)
    sender = f" and {primary}'s walsender (pid {sender_pid})" if primary else ""
    return FaultResult(summary=f"paused the walreceiver (pid {pid}) of replica {name}{sender}",
                       members=[name, *([primary] if primary else [])],
                       detail={"pid": pid, "primary": primary, "sender_pid": sender_pid})


def _replay_lsn(dsn: str) -> int:
    """The replica's last replayed WAL position as a number, for choosing the freshest."""
    value = sql.fetch_value(dsn, "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')")
    return int(value or 0)


@fault("timescaledb.promote_replica", undo="timescaledb.heal_replicas")
def promote_replica(
    ctx: RunContext, member: str | None = None, timeout: Duration = 30.0
) -> FaultResult:
    """Promote the freshest healthy replica (or `member`) once no primary is left, as an
    HA manager would. With synchronous replication the new primary would wait for a
    standby that no longer exists, so synchronous_standby_names is degraded to '' on it
    until a replica is rebuilt."""
    import psycopg  # noqa: F401  (loaded before the clock starts, not inside the detection)

    started = monotonic()
    target = ctx.target
    ops = pg_ops(target)
    roles = member_roles(target)
    alive = [n for n, r in roles.items() if r == Role.PRIMARY]
    if alive:
        raise ActionFailed(f"{alive[0]} is still a primary: kill or fence it before promoting")
    detected = monotonic()
    candidates = replicas(roles)
    if member is not None:
        if member not in candidates:
            raise ActionFailed(f"{member} is not a healthy replica (roles: {roles})")
        candidates = [member]
    if not candidates:
        raise ActionFailed(f"no healthy replica to promote (roles: {roles})")
    chosen = max(candidates, key=lambda n: _replay_lsn(ops.dsn(n)))
    ctx.will_undo("timescaledb.heal_replicas")
    degraded = ops.synchronous_wanted()
    if degraded:
        ops.set_synchronous(chosen, False)  # a standby ignores it; the new primary needs it
    seconds = max(1, int(timeout))
    ok = sql.fetch_value(ops.dsn(chosen, timeout + 2), "SELECT pg_promote(true, %s)",
                         (seconds,), timeout=timeout + 2)
    if not ok:
        raise ActionFailed(f"{chosen} did not finish promotion within {seconds}s")
    promoted = monotonic()
    if isinstance(ops, RoutesPrimary):
        ops.route_primary(chosen)  # e.g. a Kubernetes Service in-cluster clients use

    sql.wait_writable(ops.dsn(chosen), timeout=timeout, what=f"{chosen} to accept writes")
    ready = monotonic()
    note = "; synchronous_standby_names degraded to '' until a replica is rebuilt"
    return FaultResult(
        summary=f"promoted {chosen} to primary in {ready - detected:.3f}s"
        + (note if degraded else ""),
        members=[chosen],
        detail={"previous_roles": roles, "synchronous_degraded": degraded},
        measurements={
            "detect_seconds": round(detected - started, 3),
            "promote_seconds": round(promoted - detected, 3),
            "ready_seconds": round(ready - promoted, 3),
            "detected_at": detected,
            "promoted_at": promoted,
            "ready_at": ready,
        },
    )

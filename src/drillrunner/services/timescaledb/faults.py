"""Faults: kill and pause members, stall a replica's stream. Each journals its undo before
it acts. None promotes anyone: Patroni does, and the drill watches it."""

from __future__ import annotations

from drillrunner.core.actions import fault
from drillrunner.core.errors import ActionFailed
from drillrunner.core.verdicts import FaultResult, Measurement
from drillrunner.core.waiting import monotonic
from drillrunner.engine.context import RunContext
from drillrunner.services.timescaledb.ops import SERVICE, PredictsFailover, pg_ops
from drillrunner.services.timescaledb.repair import walreceiver_pid, walsender_pid
from drillrunner.services.timescaledb.roles import member_roles, replicas, the_primary
from drillrunner.targets.base import Signal


@fault("timescaledb.kill_primary", undo="timescaledb.rejoin_member")
def kill_primary(ctx: RunContext, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill the current primary: its Patroni and every PostgreSQL process at once, as in a
    node crash. Patroni on the standby promotes it once the leader lock expires."""
    primary = the_primary(ctx.target)
    ops = pg_ops(ctx.target)
    ctx.will_undo("timescaledb.rejoin_member", member=primary.name)
    ops.kill(primary.name, signal)
    measured: dict[str, Measurement] = {"killed_at": monotonic()}
    if isinstance(ops, PredictsFailover):
        # Patroni's settings bound when the standby can take over: shown beside the RTO.
        low, high = ops.predicted_failover()
        measured.update(predicted_failover_min_s=low, predicted_failover_max_s=high)
    return FaultResult(summary=f"killed primary {primary.name} with SIG{signal}",
                       members=[primary.name], detail={"signal": str(signal)},
                       measurements=measured)


@fault("timescaledb.kill_member", undo="timescaledb.rejoin_member")
def kill_member(ctx: RunContext, member: str, signal: Signal = Signal.KILL) -> FaultResult:
    """Kill one member, whatever its role."""
    ctx.target.member(SERVICE, member)  # raises on an unknown name
    role = member_roles(ctx.target)[member]
    ctx.will_undo("timescaledb.rejoin_member", member=member)
    pg_ops(ctx.target).kill(member, signal)
    return FaultResult(summary=f"killed {member} ({role}) with SIG{signal}", members=[member],
                       detail={"signal": str(signal), "role": role})


@fault("timescaledb.pause_member", undo="timescaledb.resume_member")
def pause_member(ctx: RunContext, member: str | None = None) -> FaultResult:
    """Freeze every process of a member (SIGSTOP), its Patroni included: it keeps its
    sockets but answers nothing and renews no lock. Without `member`: the primary."""
    member = member or the_primary(ctx.target).name
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

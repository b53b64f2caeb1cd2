"""Actions that bring members back: the undos of the faults and the rollbacks."""

from __future__ import annotations

from drillrunner.core.actions import action
from drillrunner.core.errors import ActionFailed
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import monotonic, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.ops import SERVICE, PostgresOps, pg_ops
from drillrunner.services.timescaledb.roles import Role, member_roles


def streams_from(ops: PostgresOps, primary: str, member: str, sync: bool | None = None) -> bool:
    return sql.streams(ops.dsn(primary), member, sync)


def restore_synchronous(ops: PostgresOps, primary: str, replica: str) -> bool:
    """Re-enable synchronous replication on `primary` if the settings ask for it, once
    `replica` streams (so commits do not block). True if it was (re-)enabled."""
    if not ops.synchronous_wanted():
        return False
    ops.set_synchronous(primary, True)
    poll_until(lambda: streams_from(ops, primary, replica, sync=True), timeout=20,
               what=f"{replica} to be {primary}'s synchronous standby")
    return True


def _ensure_replica(ctx: RunContext, member: str, force: bool) -> FaultResult:
    target = ctx.target
    ops = pg_ops(target)
    target.member(SERVICE, member)  # raises on an unknown name
    roles = member_roles(target)
    others = [n for n, r in roles.items() if r == Role.PRIMARY and n != member]
    if len(others) > 1:
        raise ActionFailed(f"several primaries {others}: resolve the split brain by hand")
    if not others:
        # No other primary to clone from: bring the member back on its own data.
        if roles[member] == Role.PAUSED:
            ops.resume(member)
        elif roles[member] == Role.DOWN:
            ops.start_member(member)
        return FaultResult(summary=f"no other primary: {member} runs on its own data "
                           f"(was {roles[member]})", members=[member])
    primary = others[0]
    if roles[member] == Role.PRIMARY:
        raise ActionFailed(f"{member} and {primary} are both primaries: refusing to wipe one")
    if not force and roles[member] == Role.REPLICA and streams_from(ops, primary, member):
        sync = restore_synchronous(ops, primary, member)
        return FaultResult(summary=f"{member} already streams from {primary}",
                           members=[member], detail={"synchronous": sync})
    started = monotonic()
    ops.rebuild_replica(member, primary)
    sync = restore_synchronous(ops, primary, member)
    return FaultResult(
        summary=f"rebuilt {member} from {primary} with pg_basebackup; it streams"
        + (" synchronously" if sync else ""),
        members=[member],
        detail={"primary": primary, "synchronous": sync},
        measurements={"rebuild_seconds": round(monotonic() - started, 3)},
    )


@action("timescaledb.rebuild_replica")
def rebuild_replica(ctx: RunContext, member: str, force: bool = False) -> FaultResult:
    """Make `member` a streaming replica of the current primary: clone it afresh with
    pg_basebackup unless it already streams (or `force`). With no other primary alive it
    is restarted on its own data instead. Idempotent."""
    return _ensure_replica(ctx, member, force)


@action("timescaledb.heal_replicas")
def heal_replicas(ctx: RunContext) -> FaultResult:
    """Every member but the primary streams from it again (the undo of a promotion)."""
    roles = member_roles(ctx.target)
    primaries = [n for n, r in roles.items() if r == Role.PRIMARY]
    if len(primaries) != 1:
        raise ActionFailed(f"expected exactly one primary to heal around, found roles {roles}")
    results = [_ensure_replica(ctx, n, False) for n in roles if n != primaries[0]]
    return FaultResult(summary="; ".join(r.summary for r in results),
                       members=[m for r in results for m in r.members])


@action("timescaledb.resume_member")
def resume_member(ctx: RunContext, member: str) -> FaultResult:
    """Resume a paused (SIGSTOPped) member. Idempotent."""
    ref = ctx.target.member(SERVICE, member)
    ops = pg_ops(ctx.target)
    # A frozen pod turns NotReady (its probes hang): paused counts, running or not.
    if not ctx.target.is_running(ref) and not ops.is_paused(member):
        return FaultResult(summary=f"{member} is not running: nothing to resume", members=[member])
    ops.resume(member)
    return FaultResult(summary=f"resumed {member}", members=[member])


def walreceiver_pid(ops: PostgresOps, member: str) -> int | None:
    import psycopg

    try:
        value = sql.fetch_value(ops.dsn(member), "SELECT pid FROM pg_stat_wal_receiver")
    except psycopg.Error:
        return None
    return int(value) if value is not None else None


def walsender_pid(ops: PostgresOps, primary: str, replica: str) -> int | None:
    import psycopg

    try:
        value = sql.fetch_value(
            ops.dsn(primary), "SELECT pid FROM pg_stat_replication WHERE application_name = %s",
            (replica,),
        )
    except psycopg.Error:
        return None
    return int(value) if value is not None else None


def _frozen_stream_pids(ops: PostgresOps, member: str) -> list[int]:
    """The member's walreceiver and walsenders (both views read shared memory, so they
    answer while those processes are frozen)."""
    import psycopg

    try:
        rows = sql.fetch(ops.dsn(member), "SELECT pid FROM pg_stat_wal_receiver"
                         " UNION ALL SELECT pid FROM pg_stat_replication")
    except psycopg.Error:
        return []
    return [int(r[0]) for r in rows if r[0] is not None]


@action("timescaledb.resume_walreceiver")
def resume_walreceiver(
    ctx: RunContext,
    member: str | None = None,
    pid: int | None = None,
    primary: str | None = None,
    sender_pid: int | None = None,
) -> FaultResult:
    """Resume a frozen walreceiver (`pid` of `member` as the fault recorded it) and the
    primary's walsender if it was frozen too. Without arguments, every walreceiver and
    walsender of every member is resumed. A PID that no longer belongs to the member (its
    primary was killed, say) is left alone. Idempotent."""
    ops = pg_ops(ctx.target)
    targets: list[tuple[str, int]] = []
    if primary is not None and sender_pid is not None:
        targets.append((primary, sender_pid))
    if member is None:
        for m in ctx.target.members(SERVICE):
            if ctx.target.is_running(m):
                targets.extend((m.name, p) for p in _frozen_stream_pids(ops, m.name))
    else:
        ctx.target.member(SERVICE, member)  # raises on an unknown name
        pid = pid if pid is not None else walreceiver_pid(ops, member)
        if pid is not None:
            targets.append((member, pid))
    for name, p in targets:
        ops.resume_process(name, p)
    return FaultResult(
        summary="resumed " + (", ".join(f"pid {p} of {n}" for n, p in targets) or "nothing"),
        members=sorted({n for n, _ in targets}), detail={"pids": [p for _, p in targets]},
    )

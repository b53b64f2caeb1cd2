"""Actions that bring members back: the undos of the faults and the rollbacks."""

from __future__ import annotations

from drillrunner.core.actions import action
from drillrunner.core.errors import ActionFailed
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import WaitTimeout, monotonic, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.ops import SERVICE, PostgresOps, pg_ops
from drillrunner.services.timescaledb.roles import Role, member_roles


def streams_from(ops: PostgresOps, primary: str, member: str, sync: bool | None = None) -> bool:
    return sql.streams(ops.dsn(primary), member, sync)


REJOIN_TIMEOUT = 60.0


def _named_sync(ops: PostgresOps, member: str) -> bool:
    return any(m.get("name") == member and m.get("role") == "sync_standby"
               for m in ops.cluster_state())


def _primary(ctx: RunContext, timeout: float) -> str:
    """The one primary, once Patroni has settled on it."""
    found: list[str] = []

    def one() -> bool:
        roles = member_roles(ctx.target)
        found[:] = [n for n, r in roles.items() if r == Role.PRIMARY]
        return len(found) == 1

    try:
        poll_until(one, timeout=timeout, interval=0.1, what="one primary")
    except WaitTimeout:
        raise ActionFailed(f"no single primary within {timeout:g}s: roles "
                           f"{member_roles(ctx.target)}") from None
    return found[0]


def _bring_back(ops: PostgresOps, member: str, role: str) -> str:
    """Resume a frozen member, start a stopped one; returns the role it had."""
    if role == Role.PAUSED:
        ops.resume(member)
    elif role == Role.DOWN:
        ops.start_member(member)
    return role


def _rejoin(ctx: RunContext, member: str, force: bool,
            before: str | None = None) -> FaultResult:
    """Bring `member` back under Patroni and wait until it streams from the primary
    (Patroni rewinds a demoted leader itself); reinitialize it when it cannot rejoin."""
    target = ctx.target
    ops = pg_ops(target)
    target.member(SERVICE, member)  # raises on an unknown name
    started = monotonic()
    if before is None:
        before = _bring_back(ops, member, member_roles(target)[member])
    primary = _primary(ctx, REJOIN_TIMEOUT)
    if primary == member:
        return FaultResult(summary=f"{member} (was {before}) is the primary again",
                           members=[member], detail={"before": before})
    sync = ops.synchronous_wanted()
    how = "rejoined"
    try:
        if force:
            raise WaitTimeout("reinitialize asked for")
        poll_until(lambda: streams_from(ops, primary, member, sync or None),
                   timeout=REJOIN_TIMEOUT / 2, interval=0.1,
                   what=f"{member} to stream from {primary}")
    except WaitTimeout:
        ops.rebuild_replica(member, primary)  # Patroni's reinitialize
        how = "reinitialized"
        poll_until(lambda: streams_from(ops, primary, member, sync or None),
                   timeout=REJOIN_TIMEOUT, interval=0.1,
                   what=f"{member} to stream from {primary}")
    if sync:
        # Patroni promotes only the standby its /sync key names: until then a failover
        # would find no candidate, so the member is not back yet.
        poll_until(lambda: _named_sync(ops, member), timeout=REJOIN_TIMEOUT, interval=0.1,
                   what=f"Patroni to name {member} its synchronous standby")
    mode = " synchronously" if sync else ""
    return FaultResult(
        summary=f"{member} (was {before}) {how}: streams{mode} from {primary}",
        members=[member], detail={"primary": primary, "before": before, "how": how},
        measurements={"rejoin_seconds": round(monotonic() - started, 3)},
    )


@action("timescaledb.rejoin_member")
def rejoin_member(ctx: RunContext, member: str, force: bool = False) -> FaultResult:
    """Start (or resume) `member` and wait until Patroni has it stream from the primary:
    rewound if it was a leader that diverged, reinitialized from the primary if it cannot
    rejoin (or `force`). Idempotent."""
    return _rejoin(ctx, member, force)


@action("timescaledb.heal_cluster")
def heal_cluster(ctx: RunContext) -> FaultResult:
    """Every member runs again under Patroni: one primary, the others streaming from it."""
    ops = pg_ops(ctx.target)
    # Every member back first: the one Patroni must make leader may be any of them (a
    # lagging standby waits for the old leader to return).
    before = {name: _bring_back(ops, name, role)
              for name, role in member_roles(ctx.target).items()}
    results = [_rejoin(ctx, name, False, role) for name, role in before.items()]
    return FaultResult(summary="; ".join(r.summary for r in results),
                       members=[m for r in results for m in r.members])


@action("timescaledb.resume_member")
def resume_member(ctx: RunContext, member: str | None = None) -> FaultResult:
    """Resume a paused (SIGSTOPped) member, or every paused member. Idempotent."""
    ops = pg_ops(ctx.target)
    names = [member] if member else [m.name for m in ctx.target.members(SERVICE)]
    resumed = []
    for name in names:
        ref = ctx.target.member(SERVICE, name)
        # A frozen pod turns NotReady (its probes hang): paused counts, running or not.
        if ops.is_paused(name) or (member and ctx.target.is_running(ref)):
            ops.resume(name)
            resumed.append(name)
    return FaultResult(summary=f"resumed {', '.join(resumed)}" if resumed
                       else "no paused member: nothing to resume", members=resumed)


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

"""Base backups, restore points and point-in-time restores into member `tsdb-pitr`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from drillrunner.core.actions import action, fault
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.ops import PostgresOps, StagesRestore, pg_ops
from drillrunner.services.timescaledb.roles import the_primary
from drillrunner.targets.base import MemberRef

# ctx.stash keys shared by these steps and the PITR check.
BACKUP_KEY = "timescaledb.base_backup"
RESTORE_POINT_KEY = "timescaledb.restore_point"
RESTORE_SECONDS_KEY = "timescaledb.restore_seconds"
RESTORE_FAILED_KEY = "timescaledb.restore_failed"
# How often the restore is polled for readiness: the error bar of its duration.
RESTORE_POLL_SECONDS = 0.05
DOWN_GRACE_SECONDS = 5.0  # how long the restore member may look down before it failed


def switch_and_archive(ops: PostgresOps, primary: str, timeout: float = 30.0) -> str:
    """Close the current WAL segment and wait until the archiver has copied it."""
    with sql.connect(ops.dsn(primary), for_writes=True) as conn:
        # A commit first: the switch is a no-op on a segment holding nothing new.
        sql.execute_bounded(conn, sql.WRITE_PROBE, [], 10.0)
        rows = sql.execute_bounded(conn, "SELECT pg_walfile_name(pg_switch_wal())", [], 10.0)
    walfile = str(rows[0][0])

    def archived() -> bool:
        done, last = sql.fetch(
            ops.dsn(primary),
            "SELECT (pg_stat_file('pg_wal/archive_status/' || %s || '.done', true)).size"
            " IS NOT NULL, (SELECT last_archived_wal FROM pg_stat_archiver)",
            (walfile,),
        )[0]
        return bool(done) or (last is not None and len(last) == 24 and last >= walfile)

    poll_until(archived, timeout=timeout, interval=0.1, what=f"WAL segment {walfile} archived")
    return walfile


@action("timescaledb.base_backup")
def base_backup(ctx: RunContext) -> FaultResult:
    """pg_basebackup of the current primary into the target's artifacts folder."""
    primary = the_primary(ctx.target)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = ctx.target.artifacts_dir() / f"timescaledb-base-{stamp}"
    started = time.monotonic()
    path = pg_ops(ctx.target).base_backup(primary.name, dest)
    ctx.stash[BACKUP_KEY] = str(path)
    return FaultResult(summary=f"base backup of {primary.name} in {path}",
                       members=[primary.name], detail={"path": str(path)},
                       measurements={"backup_seconds": round(time.monotonic() - started, 3)})


@action("timescaledb.mark_restore_point")
def mark_restore_point(ctx: RunContext) -> FaultResult:
    """Record the primary's clock as the point-in-time restore target and archive the WAL.

    The client's monotonic clock is read just before and after, so the check can tell which
    operations surely completed before the target and which surely started after it.
    """
    ops = pg_ops(ctx.target)
    primary = the_primary(ctx.target)
    before = time.monotonic()
    value = sql.fetch_value(ops.dsn(primary.name), "SELECT clock_timestamp()::text")
    after = time.monotonic()
    walfile = switch_and_archive(ops, primary.name)
    ctx.stash[RESTORE_POINT_KEY] = {"time": value, "mono_before": before, "mono_after": after}
    return FaultResult(summary=f"restore point {value} marked on {primary.name}; WAL up to "
                       f"{walfile} archived", members=[primary.name],
                       detail={"target_time": value, "walfile": walfile})


@fault("timescaledb.restore_pitr", undo="timescaledb.remove_pitr_member", disrupts=0)
def restore_pitr(ctx: RunContext, timeout: Duration = 120.0) -> FaultResult:
    """Restore the base backup into member tsdb-pitr, replaying the WAL archive up to the
    marked restore point, then promote it. Measures the time until it accepts queries as a
    primary. A restore that fails (the member stops, or never gets there) is reported in
    the result, with no RTO: the scenario then fails, as an unrestorable backup must."""
    backup = ctx.stash.get(BACKUP_KEY)
    point = ctx.stash.get(RESTORE_POINT_KEY)
    if backup is None or point is None:
        raise ActionFailed("run timescaledb.base_backup and timescaledb.mark_restore_point first")
    ops = pg_ops(ctx.target)
    member = ops.pitr_member()
    ctx.will_undo("timescaledb.remove_pitr_member")
    staged = isinstance(ops, StagesRestore)
    if isinstance(ops, StagesRestore):  # drill's own transfer: not part of the timed restore
        ops.stage_restore(Path(backup), str(point["time"]))
    # Archive what was written since, as an operator would before restoring.
    walfile = switch_and_archive(ops, the_primary(ctx.target).name)
    started = time.monotonic()
    detail = {"backup": backup, "target_time": point["time"], "archived_through": walfile,
              "backup_staged_before_timing": staged}
    try:
        ops.restore_pitr(Path(backup), str(point["time"]))
        down: list[float] = []
        poll_until(lambda: _promoted(ctx, ops, member, down), timeout=timeout,
                   interval=RESTORE_POLL_SECONDS, what=f"{member.name} to finish recovery")
    except (ActionFailed, WaitTimeout) as exc:
        # An unrestorable backup is the finding this fault exists for: evidence, not error.
        failure = str(exc)[:2000]
        ctx.stash[RESTORE_FAILED_KEY] = failure
        return FaultResult(summary=f"restoring {member.name} to {point['time']} FAILED after "
                           f"{time.monotonic() - started:.1f}s", members=[member.name],
                           detail={**detail, "restore_failed": failure},
                           measurements={"restore_seconds": None, "rto_seconds": None})
    seconds = round(time.monotonic() - started, 3)
    ctx.stash[RESTORE_SECONDS_KEY] = seconds
    return FaultResult(
        summary=f"restored {member.name} to {point['time']} in {seconds:.3f}s",
        members=[member.name], detail=detail,
        measurements={"restore_seconds": seconds, "rto_seconds": seconds,
                      "rto_error_seconds": RESTORE_POLL_SECONDS},
    )


def _promoted(ctx: RunContext, ops: PostgresOps, member: MemberRef,
              down_since: list[float]) -> bool:
    """The restored member accepts queries as a primary. A pod's readiness may blink while
    recovery is busy: only a member that stays down is a failed restore."""
    import psycopg

    if not ctx.target.is_running(member):
        now = time.monotonic()
        down_since[:] = down_since or [now]
        if now - down_since[0] >= DOWN_GRACE_SECONDS:
            raise ActionFailed(f"{member.name} stopped during recovery:\n"
                               f"{ctx.target.log_tail(member, 15)}")
        return False
    down_since.clear()
    try:
        return sql.fetch_value(ops.dsn(member.name), "SELECT pg_is_in_recovery()") is False
    except psycopg.Error:
        return False


@action("timescaledb.remove_pitr_member")
def remove_pitr_member(ctx: RunContext) -> FaultResult:
    """Stop and delete the restored member. Idempotent."""
    ops = pg_ops(ctx.target)
    name = ops.pitr_member().name
    removed = ops.remove_member(name)
    return FaultResult(summary=f"removed {name}" if removed else f"{name} was not there",
                       members=[name])

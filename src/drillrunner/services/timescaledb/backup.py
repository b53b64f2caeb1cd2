"""Backups, restore points and point-in-time restores into member `tsdb-pitr`.

pgBackRest where the target archives WAL with it (`BacksUpWithPgBackRest`: full and
incremental backups, `pgbackrest verify`, restore to a time); pg_basebackup elsewhere. The
restore uses whichever kind of backup the scenario took last.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from drillrunner.core.actions import action, fault
from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.services.timescaledb import pgbackrest as pgbr
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.ops import (
    BacksUpWithPgBackRest,
    PostgresOps,
    StagesRestore,
    pg_ops,
)
from drillrunner.services.timescaledb.roles import the_primary
from drillrunner.targets.base import MemberRef

# ctx.stash keys shared by these steps and the PITR check.
BACKUP_KEY = "timescaledb.base_backup"
PGBR_BACKUP_KEY = "timescaledb.pgbackrest_backup"  # {"label", "type"} of the last one
BACKUP_FAILED_KEY = "timescaledb.backup_failed"
VERIFY_KEY = "timescaledb.verify_before"  # the verify report before any corruption
CORRUPTED_KEY = "timescaledb.corrupted_file"
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
    ctx.stash.pop(PGBR_BACKUP_KEY, None)
    return FaultResult(summary=f"base backup of {primary.name} in {path}",
                       members=[primary.name], detail={"path": str(path)},
                       measurements={"backup_seconds": round(time.monotonic() - started, 3)})


def pgbr_ops(ctx: RunContext) -> BacksUpWithPgBackRest:
    ops = pg_ops(ctx.target)
    if not isinstance(ops, BacksUpWithPgBackRest):
        raise ActionFailed(f"target {ctx.target.name!r} does not back up with pgBackRest")
    return ops


@action("timescaledb.pgbackrest_backup")
def pgbackrest_backup(ctx: RunContext, type: pgbr.BackupType = pgbr.BackupType.FULL
                      ) -> FaultResult:
    """A pgBackRest backup (full, diff or incr) of the current primary into the stack's
    repository. A backup pgBackRest refuses (WAL that never reaches the repository...) is
    recorded, not raised: the restore that follows then fails, as it would for real."""
    ops = pgbr_ops(ctx)
    primary = the_primary(ctx.target).name
    ctx.stash.pop(BACKUP_FAILED_KEY, None)
    try:
        entry, seconds = ops.pgbackrest_backup(pgbr.BackupType(type))
    except StackError as exc:
        ctx.stash[BACKUP_FAILED_KEY] = str(exc)[:2000]
        return FaultResult(summary=f"pgBackRest {type} backup of {primary} FAILED: "
                           f"{str(exc)[:300]}", members=[primary],
                           detail={"backup_failed": str(exc)[:2000]},
                           measurements={"backup_seconds": None})
    ctx.stash[PGBR_BACKUP_KEY] = {"label": entry.label, "type": entry.type}
    return FaultResult(
        summary=f"pgBackRest {entry.type} backup {entry.label} of {primary} in {seconds:.2f}s",
        members=[primary],
        detail={"label": entry.label, "type": entry.type, "wal_start": entry.wal_start,
                "wal_stop": entry.wal_stop, "repo": str(ops.backup_repo())},
        measurements={"backup_seconds": seconds, "database_bytes": entry.size,
                      "repo_bytes": entry.repo_size})


@action("timescaledb.verify_backup")
def verify_backup(ctx: RunContext) -> FaultResult:
    """`pgbackrest verify` of every backup and archived segment in the repository."""
    report = pgbr_ops(ctx).pgbackrest_verify()
    if CORRUPTED_KEY not in ctx.stash:
        ctx.stash[VERIFY_KEY] = {"ok": report.ok, "problems": report.problems}
    return FaultResult(
        summary=f"pgbackrest verify: {report.status}, backups "
                + ", ".join(f"{k} {v}" for k, v in report.backups.items()),
        detail={"status": report.status, "backups": report.backups,
                "problems": [f"{w} '{f}'" for w, f in report.problems][:50]},
        measurements={"invalid_files": len(report.problems)})


def _victim(ops: BacksUpWithPgBackRest, label: str) -> tuple[str, int]:
    """The largest data file of the backup (its name and size): corrupting it cannot go
    unnoticed by a restore that reads it back."""
    files = ops.backup_files(label)
    if not files:
        raise ActionFailed(f"no data file in backup {label}")
    return max(files.items(), key=lambda f: (f[1], f[0]))


@fault("timescaledb.corrupt_backup_file", undo="timescaledb.restore_backup_file",
       disrupts=0)
def corrupt_backup_file(ctx: RunContext, length: int = 16) -> FaultResult:
    """Invert `length` bytes in the middle of one file of the last pgBackRest backup, in
    the repository, keeping its name and size (silent corruption at rest)."""
    taken = ctx.stash.get(PGBR_BACKUP_KEY)
    if taken is None:
        raise ActionFailed("run timescaledb.pgbackrest_backup first")
    ops = pgbr_ops(ctx)
    rel, size = _victim(ops, taken["label"])
    offset = max(0, size // 2 - length // 2)
    original = ops.read_backup_bytes(rel, offset, length)
    if original is None or len(original) != length:
        raise ActionFailed(f"cannot read {length} bytes at offset {offset} of {rel}")
    ctx.will_undo("timescaledb.restore_backup_file", file=rel,
                  offset=offset, original=original.hex())
    ops.write_backup_bytes(rel, offset, pgbr.flip_bytes(original, 0, length))
    ctx.stash[CORRUPTED_KEY] = {"file": rel, "offset": offset, "length": length}
    return FaultResult(summary=f"inverted {length} bytes at offset {offset} of {rel}",
                       detail={"file": rel, "offset": offset, "length": length,
                               "size": size})


@action("timescaledb.restore_backup_file")
def restore_backup_file(ctx: RunContext, file: str, offset: int, original: str
                        ) -> FaultResult:
    """Put the original bytes back into a repository file. Idempotent."""
    ops, want = pgbr_ops(ctx), bytes.fromhex(original)
    current = ops.read_backup_bytes(file, offset, len(want))
    if current is None:
        return FaultResult(summary=f"{file} is gone: nothing to restore")
    if current == want:
        return FaultResult(summary=f"{file} already holds its original bytes")
    ops.write_backup_bytes(file, offset, want)
    return FaultResult(summary=f"restored {len(want)} bytes at offset {offset} of {file}")


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
    """Restore the last backup into member tsdb-pitr, replaying archived WAL up to the
    marked restore point, then promote it (pgBackRest: `restore --type=time
    --target-action=promote`). Measures the time until it accepts queries as a primary. A
    restore that fails (no backup could be taken, the member stops, or never gets there)
    is reported in the result, with no RTO: the scenario then fails, as an unrestorable
    backup must."""
    backup, taken = ctx.stash.get(BACKUP_KEY), ctx.stash.get(PGBR_BACKUP_KEY)
    refused = ctx.stash.get(BACKUP_FAILED_KEY)
    point = ctx.stash.get(RESTORE_POINT_KEY)
    if (backup is None and taken is None and refused is None) or point is None:
        raise ActionFailed("take a backup (timescaledb.pgbackrest_backup or base_backup) and "
                           "run timescaledb.mark_restore_point first")
    ops = pg_ops(ctx.target)
    member = ops.pitr_member()
    ctx.will_undo("timescaledb.remove_pitr_member")
    use_pgbr = taken is not None or refused is not None
    staged = not use_pgbr and isinstance(ops, StagesRestore)
    if staged and isinstance(ops, StagesRestore):  # drill's own transfer: not timed
        ops.stage_restore(Path(str(backup)), str(point["time"]))
    # Archive what was written since, as an operator would before restoring.
    walfile = switch_and_archive(ops, the_primary(ctx.target).name)
    started = time.monotonic()
    detail = {"backup": taken["label"] if taken is not None else backup,
              "target_time": point["time"], "archived_through": walfile,
              "backup_staged_before_timing": staged,
              "method": "pgbackrest" if use_pgbr else "pg_basebackup"}
    try:
        if refused is not None:
            raise ActionFailed(f"no backup to restore: {refused}")
        if taken is not None:
            pgbr_ops(ctx).pgbackrest_restore(str(point["time"]), taken["label"])
        else:
            ops.restore_pitr(Path(str(backup)), str(point["time"]))
        down: list[float] = []
        poll_until(lambda: _promoted(ctx, ops, member, down), timeout=timeout,
                   interval=RESTORE_POLL_SECONDS, what=f"{member.name} to finish recovery")
    except (ActionFailed, StackError, WaitTimeout) as exc:
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

"""The backup checks: a point-in-time restore holds exactly the rows before the target, and
pgBackRest's verification of the repository."""

from __future__ import annotations

from drillrunner.core.actions import check
from drillrunner.core.verdicts import UNKNOWN, CheckResult, Verdict
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpStatus
from drillrunner.services.timescaledb import pgbackrest as pgbr
from drillrunner.services.timescaledb.backup import (
    CORRUPTED_KEY,
    RESTORE_FAILED_KEY,
    RESTORE_POINT_KEY,
    RESTORE_SECONDS_KEY,
    VERIFY_KEY,
)
from drillrunner.services.timescaledb.ops import BacksUpWithPgBackRest, pg_ops
from drillrunner.services.timescaledb.workload import SequencedWrites

# FATAL lines of clients turned away while the server starts: noise, not the reason.
_CLIENT_NOISE = ("not yet accepting connections", "is starting up", "is shutting down")


def _gist(failure: str) -> str:
    """The server's own FATAL line when the log tail has one, else the first line."""
    lines = [ln.strip() for ln in failure.splitlines() if ln.strip()]
    fatal = [ln for ln in lines if "FATAL" in ln or "PANIC" in ln]
    reason = [ln for ln in fatal if not any(n in ln for n in _CLIENT_NOISE)] or fatal
    return (reason[0] if reason else lines[0] if lines else "no reason given")[:300]


@check("timescaledb.pitr_matches_target")
def pitr_matches_target(ctx: RunContext) -> CheckResult:
    """Every write acknowledged before the restore point is in the restored member and no
    write started after it is. Writes in flight at the target may go either way."""
    point = ctx.stash.get(RESTORE_POINT_KEY)
    if point is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no restore point was marked")
    clients = {n: c for n, c in ctx.workloads.items() if isinstance(c, SequencedWrites)}
    if not clients:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no timescaledb workload ran")
    failed = ctx.stash.get(RESTORE_FAILED_KEY)
    if failed is not None:  # the backup could not be restored: the claim is false
        acked = sum(1 for name in clients for o in ctx.history.ops(name)
                    if o.status is OpStatus.OK and o.completed <= point["mono_before"])
        return CheckResult(
            verdict=Verdict.FAIL, summary=f"the backup could not be restored: {_gist(failed)}",
            evidence={"target_time": point["time"], "restore_failure": failed},
            measurements={"acknowledged_writes": acked, "lost_acknowledged_writes": UNKNOWN,
                          "lost_unknown_reason": "the restore failed: no restored copy to "
                                                 "read the rows back from",
                          "restore_seconds": None})
    dsn = pg_ops(ctx.target).dsn(pg_ops(ctx.target).pitr_member().name)
    acked = lost = after_checked = after_present = 0
    evidence: dict[str, object] = {"target_time": point["time"]}
    for name, client in clients.items():
        ops = ctx.history.ops(name)
        before = {o.seq for o in ops
                  if o.status is OpStatus.OK and o.completed <= point["mono_before"]}
        later = {o.seq for o in ops if o.invoked >= point["mono_after"]}
        present = client.read_from(dsn, before | later, timeout=10.0)
        missing = sorted(before - present)
        extra = sorted(later & present)
        acked += len(before)
        lost += len(missing)
        after_checked += len(later)
        after_present += len(extra)
        evidence[name] = {"acknowledged_before_target": len(before), "missing": missing[:20],
                          "started_after_target": len(later), "present_after_target": extra[:20]}
    restore = ctx.stash.get(RESTORE_SECONDS_KEY)
    measurements: dict[str, float | int | str | None] = {
        "acknowledged_writes": acked,
        "lost_acknowledged_writes": lost,
        "rows_after_target_checked": after_checked,
        "rows_after_target_present": after_present,
        "restore_seconds": restore,
    }
    if acked == 0 or after_checked == 0:
        return CheckResult(
            verdict=Verdict.UNKNOWN, evidence=evidence, measurements=measurements,
            summary="the workload wrote nothing on one side of the target: nothing to compare",
        )
    limit = ctx.slo.get("rto")
    slow = restore is None or (limit is not None and restore > limit)
    ok = lost == 0 and after_present == 0 and not slow
    timing = (f"; restore took {restore}s" + (f", over the RTO of {limit:g}s" if slow else "")
              if restore is not None else "; the restore time was not measured")
    return CheckResult(
        verdict=Verdict.PASS if ok else Verdict.FAIL,
        summary=(f"restored copy: {acked - lost}/{acked} writes acknowledged before the target "
                 f"present, {after_present}/{after_checked} started after it present"
                 + timing),
        evidence=evidence,
        measurements=measurements,
    )


@check("timescaledb.backup_verified")
def backup_verified(ctx: RunContext, expect_corruption: bool = False) -> CheckResult:
    """`pgbackrest verify` of the repository, judged on pgBackRest's own report.

    By default the backups must verify clean: any invalid file fails, named. With
    `expect_corruption` (a drill that corrupted a backup file on purpose) the claim is that
    verification catches it: it passes when verify names the corrupted file and fails
    when verify calls the backup valid (a corrupt backup that would have been trusted)."""
    ops = pg_ops(ctx.target)
    if not isinstance(ops, BacksUpWithPgBackRest):
        return CheckResult(verdict=Verdict.UNKNOWN,
                           summary="the target does not back up with pgBackRest")
    report = ops.pgbackrest_verify()
    problems = [f"{what} '{file}'" for what, file in report.problems]
    evidence: dict[str, object] = {"status": report.status, "backups": report.backups,
                                   "problems": problems[:50],
                                   "pgbackrest_output": report.output[-2000:]}
    measurements: dict[str, float | int | str | None] = {
        "invalid_files": len(report.problems),
        "invalid_backups": sum(1 for s in report.backups.values() if s != "valid")}
    if not expect_corruption:
        return CheckResult(
            verdict=Verdict.PASS if report.ok else Verdict.FAIL, evidence=evidence,
            measurements=measurements,
            summary=(f"pgbackrest verify: {len(report.backups)} backup(s) valid" if report.ok
                     else "pgbackrest verify found corruption: " + "; ".join(problems[:3])))
    return _corruption_caught(ctx, report, evidence, measurements)


def _corruption_caught(ctx: RunContext, report: pgbr.VerifyReport,
                       evidence: dict[str, object],
                       measurements: dict[str, float | int | str | None]) -> CheckResult:
    corrupted = ctx.stash.get(CORRUPTED_KEY)
    before = ctx.stash.get(VERIFY_KEY)
    if corrupted is None:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence,
                           summary="no backup file was corrupted: nothing to detect")
    evidence["corrupted_file"] = corrupted["file"]
    if before is not None and not before["ok"]:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence={**evidence, "before": before},
                           summary="the backup did not verify clean before the corruption")
    named = report.names(corrupted["file"])
    measurements["corrupted_file_reported"] = int(bool(named))
    if named:
        return CheckResult(verdict=Verdict.PASS, evidence=evidence, measurements=measurements,
                           summary=f"pgbackrest verify caught the corruption: "
                                   f"{named[0]} '{corrupted['file']}'")
    return CheckResult(verdict=Verdict.FAIL, evidence=evidence, measurements=measurements,
                       summary=f"pgbackrest verify did not report the corrupted file "
                               f"{corrupted['file']} (status {report.status})")

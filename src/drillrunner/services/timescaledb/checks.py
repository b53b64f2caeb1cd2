"""The point-in-time restore check: the restored copy holds exactly the rows before the
target."""

from __future__ import annotations

from drillrunner.core.actions import check
from drillrunner.core.verdicts import UNKNOWN, CheckResult, Verdict
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpStatus
from drillrunner.services.timescaledb.backup import (
    RESTORE_FAILED_KEY,
    RESTORE_POINT_KEY,
    RESTORE_SECONDS_KEY,
)
from drillrunner.services.timescaledb.ops import pg_ops
from drillrunner.services.timescaledb.workload import SequencedWrites


def _gist(failure: str) -> str:
    """The server's own FATAL line when the log tail has one, else the first line."""
    lines = [ln.strip() for ln in failure.splitlines() if ln.strip()]
    fatal = [ln for ln in lines if "FATAL" in ln or "PANIC" in ln]
    return (fatal[0] if fatal else lines[0] if lines else "no reason given")[:300]


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

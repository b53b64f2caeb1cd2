"""Feast's own checks, computed after the faults from the history and the stash."""

from __future__ import annotations

import contextlib
from typing import Any

from drillrunner.core.actions import check
from drillrunner.core.verdicts import CheckResult, Measurement, Verdict
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.engine.checks import fault_time
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpStatus
from drillrunner.services.feast import canary, http
from drillrunner.services.feast.faults import STASH_FLUSH
from drillrunner.services.feast.observe import STASH_SAMPLES
from drillrunner.services.feast.ops import feast_ops
from drillrunner.services.feast.restore import (
    STASH_BACKUP,
    STASH_REGISTRY_RESTORE,
    STASH_RESTORES,
)

WORKLOAD = "feast.online_reads"
SETTLE = 10.0  # how long the canaries may take to be served right after recovery


def _served_wrong(ctx: RunContext) -> tuple[canary.Truth, list[canary.Mismatch], str | None]:
    """The truth and the mismatches of the last look, retried for SETTLE seconds."""
    ops = feast_ops(ctx.target)
    truth = ops.offline_truth()
    last: list[Any] = [[], None]

    def look() -> bool:
        try:
            last[0] = canary.compare(truth, canary.parse_response(
                http.online_features(ops.base_url())))
            last[1] = None
        except Exception as exc:
            last[0], last[1] = [], f"{type(exc).__name__}: {exc}"[:300]
            return False
        return not last[0]

    with contextlib.suppress(WaitTimeout):  # the last look says what is wrong
        poll_until(look, timeout=SETTLE, interval=0.2, what="the canaries")
    return truth, last[0], last[1]


@check("feast.canaries_served")
def canaries_served(ctx: RunContext, workload: str = WORKLOAD) -> CheckResult:
    """After recovery every canary value served equals the offline truth. Feast takes no
    writes in these drills, so the summary's write counts are canary values:
    acknowledged = canary values a correct read verified before the first fault,
    lost = those not served correctly now."""
    truth, wrong, error = _served_wrong(ctx)
    t_fault = fault_time(ctx, None)
    verified = any(o.status is OpStatus.OK and (t_fault is None or o.completed < t_fault)
                   for o in ctx.history.ops(workload))
    total = canary.value_count(truth)
    acked = total if verified else 0
    lost = total if error else len(wrong)
    measurements: dict[str, Measurement] = {
        "acknowledged_writes": acked, "lost_acknowledged_writes": lost if acked else 0}
    evidence = {"wrong_sample": [w.describe() for w in wrong[:10]], "error": error,
                "canary_values": total}
    if error or wrong:
        return CheckResult(verdict=Verdict.FAIL, evidence=evidence, measurements=measurements,
                           summary=f"{lost} of {total} canary values not served correctly"
                                   + (f" ({error})" if error else ""))
    if not acked:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence,
                           measurements=measurements,
                           summary="no correct read before the fault to compare with")
    return CheckResult(verdict=Verdict.PASS, evidence=evidence, measurements=measurements,
                       summary=f"all {total} canary values served as in the offline store")


@check("feast.online_store_restored")
def online_store_restored(ctx: RunContext, workload: str = WORKLOAD) -> CheckResult:
    """The flushed online store was noticed (a canary read failed after the flush) and a
    re-materialisation made the canaries correct again. Evidence: every procedure tried,
    whether it restored, and how long it took."""
    flush = ctx.stash.get(STASH_FLUSH)
    tries: list[dict[str, Any]] = ctx.stash.get(STASH_RESTORES, [])
    if flush is None or not tries:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no flush or no restore was run")
    t0 = float(flush["invoked"])
    failed = [o for o in ctx.history.ops(workload)
              if o.status is not OpStatus.OK and o.completed >= t0]
    detection = failed[0].completed - t0 if failed else None
    working = [t for t in tries if t["restored"] and t["broken_before"]]
    measurements: dict[str, Measurement] = {
        "detection_seconds": round(detection, 4) if detection is not None else None,
        "keys_flushed": int(flush["keys"]),
    }
    for t in tries:
        measurements[f"{t['mode']}_{t['via']}_restored"] = int(bool(t["restored"]))
    if working:
        measurements["restore_seconds"] = working[0]["seconds"]
    evidence = {"procedures": tries, "failed_reads_after_flush": len(failed)}
    named = ", ".join(f"{t['mode']} via {t['via']}: "
                      f"{'restored' if t['restored'] else 'did NOT restore'}" for t in tries)
    if detection is None:
        return CheckResult(verdict=Verdict.FAIL, evidence=evidence, measurements=measurements,
                           summary=f"no canary read failed after the flush: the loss went "
                                   f"unnoticed ({named})")
    if not working:
        return CheckResult(verdict=Verdict.FAIL, evidence=evidence, measurements=measurements,
                           summary=f"no procedure restored the online store ({named})")
    return CheckResult(verdict=Verdict.PASS, evidence=evidence, measurements=measurements,
                       summary=f"flush noticed after {detection:.2f}s; {named}")


@check("feast.registry_restored")
def registry_restored(ctx: RunContext) -> CheckResult:
    """The registry after the restore holds exactly the objects of the backup (names and
    proto checksums) and the server serves the canaries correctly from it."""
    backup = ctx.stash.get(STASH_BACKUP)
    restore = ctx.stash.get(STASH_REGISTRY_RESTORE)
    if backup is None or restore is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no registry backup or restore ran")
    ops = feast_ops(ctx.target)
    try:
        now = ops.registry_objects()
    except Exception as exc:
        now = {"error": [f"{type(exc).__name__}: {exc}"[:200]]}
    before: dict[str, list[str]] = backup["objects"]
    diff = {k: {"backup": before.get(k, []), "now": now.get(k, [])}
            for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)}
    _, wrong, error = _served_wrong(ctx)
    measurements: dict[str, Measurement] = {
        "registry_restore_seconds": restore["restore_seconds"],
        "pg_restore_seconds": restore["pg_restore_seconds"],
    }
    evidence = {"differences": diff, "objects": before, "served_error": error,
                "wrong_sample": [w.describe() for w in wrong[:5]], "dump": backup["path"]}
    if diff or wrong or error:
        return CheckResult(verdict=Verdict.FAIL, evidence=evidence, measurements=measurements,
                           summary=f"{len(diff)} registry tables differ from the backup; "
                                   f"{len(wrong)} canary values wrong"
                                   + (f"; {error}" if error else ""))
    count = sum(len(v) for v in before.values())
    return CheckResult(verdict=Verdict.PASS, evidence=evidence, measurements=measurements,
                       summary=f"all {count} registry objects back as backed up; canaries "
                               f"served correctly {restore['restore_seconds']:.2f}s after "
                               "the restore began")


@check("feast.health_reflects_dependencies")
def health_reflects_dependencies(ctx: RunContext) -> CheckResult:
    """Whenever the server could not serve the canaries correctly (its dependency was
    down), its health endpoint said so (anything but 200). Judged on the samples of
    feast.observe_health: one 200 while reads failed is a FAIL."""
    samples: list[dict[str, Any]] = ctx.stash.get(STASH_SAMPLES, [])
    failing = [s for s in samples if not s["features_ok"]]
    lying = [s for s in failing if s["health"] == 200]
    measurements: dict[str, Measurement] = {
        "health_samples": len(samples), "samples_serving_failed": len(failing),
        "health_200_while_failing": len(lying)}
    evidence = {"healthy_while_failing_sample": lying[:5],
                "failing_sample": failing[:5], "health_statuses": sorted(
                    {str(s["health"]) for s in failing})}
    if not failing:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence, measurements=measurements,
                           summary=f"no dependency outage observed in {len(samples)} samples")
    if lying:
        return CheckResult(
            verdict=Verdict.FAIL, evidence=evidence, measurements=measurements,
            summary=f"health answered 200 in {len(lying)} of {len(failing)} samples where the "
                    f"server could not serve features, e.g. {lying[0]['error']}")
    return CheckResult(verdict=Verdict.PASS, evidence=evidence, measurements=measurements,
                       summary=f"health was not 200 in all {len(failing)} samples where "
                               "serving failed")

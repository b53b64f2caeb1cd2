"""Checks that hold for every service: computed from the history after the run."""

from __future__ import annotations

from drillrunner.engine.actions import check
from drillrunner.engine.context import RunContext
from drillrunner.engine.recovery import loss, recovery
from drillrunner.engine.verdicts import CheckResult, Verdict
from drillrunner.units import Duration


def fault_time(ctx: RunContext, from_fault: str | None) -> float | None:
    """When the (named, or first) fault was invoked."""
    events = [f for f in ctx.history.faults() if from_fault in (None, f.name)]
    return events[0].invoked if events else None


@check("recovered_within_slo")
def recovered_within_slo(
    ctx: RunContext, rto: Duration | None = None, from_fault: str | None = None
) -> CheckResult:
    """Client-view RTO of every workload is within the SLO (default: the scenario's slo.rto)."""
    limit = rto if rto is not None else ctx.slo.get("rto")
    t_fault = fault_time(ctx, from_fault)
    if t_fault is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no fault was injected")
    if limit is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no RTO limit given (slo.rto)")
    names = ctx.history.workloads()
    if not names:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no workload observed the service")
    worst = None
    evidence: dict[str, object] = {"t_fault": t_fault}
    for name in names:
        r = recovery(ctx.history.ops(name), t_fault)
        evidence[name] = {
            "recovered": r.recovered,
            "outage_observed": r.outage_observed,
            "rto_seconds": r.rto_seconds,
            "rto_error_seconds": r.rto_error_seconds,
            "failed_ops": r.failed_ops,
        }
        if worst is None or not r.recovered or (
            worst.recovered and (r.rto_seconds or 0) > (worst.rto_seconds or 0)
        ):
            worst = r
    assert worst is not None
    measurements = {
        "rto_seconds": worst.rto_seconds,
        "rto_error_seconds": worst.rto_error_seconds,
        "unavailable_seconds": worst.unavailable_seconds,
    }
    if not worst.recovered:
        return CheckResult(
            verdict=Verdict.FAIL,
            summary=f"the workload never recovered after the fault (SLO {limit:g}s)",
            evidence=evidence,
            measurements=measurements,
        )
    assert worst.rto_seconds is not None
    ok = worst.rto_seconds <= limit
    return CheckResult(
        verdict=Verdict.PASS if ok else Verdict.FAIL,
        summary=(
            f"RTO {worst.rto_seconds:.3f}s ± {worst.rto_error_seconds or 0:.3f}s "
            f"{'within' if ok else 'exceeds'} the SLO of {limit:g}s"
        ),
        evidence=evidence,
        measurements=measurements,
    )


@check("no_acknowledged_write_lost")
def no_acknowledged_write_lost(ctx: RunContext, allowed: int | None = None) -> CheckResult:
    """Every acknowledged write of every workload is read back from the store."""
    limit = allowed if allowed is not None else int(ctx.slo.get("lost_acknowledged_writes", 0))
    if not ctx.workloads:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no workload wrote anything")
    acked = lost = failed_present = 0
    evidence: dict[str, object] = {}
    spans: list[float] = []
    for name, client in ctx.workloads.items():
        ops = ctx.history.ops(name)
        present = client.read_back({o.seq for o in ops})
        r = loss(ops, present)
        acked += r.acknowledged
        lost += len(r.lost)
        failed_present += r.failed_but_present
        if r.span_seconds is not None:
            spans.append(r.span_seconds)
        evidence[name] = {
            "acknowledged": r.acknowledged,
            "lost": len(r.lost),
            "lost_sequences_sample": r.lost[:20],
            "lost_span_seconds": r.span_seconds,
            "failed_writes_present": r.failed_but_present,
        }
    measurements = {
        "acknowledged_writes": acked,
        "lost_acknowledged_writes": lost,
        "lost_span_seconds": max(spans) if spans else 0.0,
    }
    if acked == 0:
        return CheckResult(
            verdict=Verdict.UNKNOWN,
            summary="no write was acknowledged, so nothing could be lost",
            evidence=evidence,
            measurements=measurements,
        )
    ok = lost <= limit
    return CheckResult(
        verdict=Verdict.PASS if ok else Verdict.FAIL,
        summary=f"{lost} of {acked} acknowledged writes lost (allowed {limit})",
        evidence=evidence,
        measurements=measurements,
    )

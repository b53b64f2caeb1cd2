"""Checks that hold for every service: computed from the history after the run."""

from __future__ import annotations

from drillrunner.core.actions import check
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import UNKNOWN, CheckResult, Measurement, Verdict
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpStatus
from drillrunner.engine.recovery import loss


def fault_time(ctx: RunContext, from_fault: str | None) -> float | None:
    """When the (named, or first) fault was invoked."""
    events = [f for f in ctx.history.faults() if from_fault in (None, f.name)]
    return events[0].invoked if events else None


@check("recovered_within_slo")
def recovered_within_slo(
    ctx: RunContext, rto: Duration | None = None, from_fault: str | None = None
) -> CheckResult:
    """The scenario's RTO, as the engine measured it (the client's unavailability, or the
    time a restore or restart took), is within the SLO (default: the scenario's slo.rto).
    `from_fault` names the fault whose invocation the fault-to-recovery time is taken from."""
    limit = rto if rto is not None else ctx.slo.get("rto")
    rec = ctx.recovery
    if rec is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no recovery was measured")
    if limit is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no RTO limit given (slo.rto)")
    measurements = rec.measurements()
    t_named = fault_time(ctx, from_fault)
    if from_fault is not None and t_named is not None and rec.recovered_at is not None:
        measurements["fault_to_recovery_seconds"] = round(rec.recovered_at - t_named, 4)
    evidence = {"source": rec.source, "workloads": rec.per_workload, "slo_seconds": limit}

    def result(verdict: Verdict, summary: str) -> CheckResult:
        return CheckResult(verdict=verdict, summary=summary, evidence=evidence,
                           measurements=measurements)

    if rec.outage_observed is None:
        return result(Verdict.UNKNOWN, "no operation completed after the fault: the recovery "
                                       "was not observed")
    if not rec.recovered:
        return result(Verdict.FAIL, f"never recovered: {rec.describe()} (SLO {limit:g}s)")
    if rec.rto_seconds is None:
        return result(Verdict.PASS, f"no outage observed: every operation after the fault "
                                    f"succeeded (SLO {limit:g}s)")
    ok = rec.rto_seconds <= limit
    return result(Verdict.PASS if ok else Verdict.FAIL,
                  f"{rec.describe()} {'within' if ok else 'exceeds'} the SLO of {limit:g}s")


@check("no_acknowledged_write_lost")
def no_acknowledged_write_lost(ctx: RunContext, allowed: int | None = None) -> CheckResult:
    """Every acknowledged write of every workload is read back from the store. A loss that
    cannot be read back is unknown, and fails: the SLO bounds what nobody could count."""
    limit = allowed if allowed is not None else int(ctx.slo.get("lost_acknowledged_writes", 0))
    if not ctx.workloads:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no workload wrote anything")
    acked = lost = 0
    unreadable: list[str] = []
    evidence: dict[str, object] = {}
    spans: list[float] = []
    for name, client in ctx.workloads.items():
        ops = ctx.history.ops(name)
        acked_here = sum(1 for o in ops if o.status is OpStatus.OK)
        try:
            present = client.read_back({o.seq for o in ops})
        except Exception as exc:
            reason = f"{name}: the read-back failed: {type(exc).__name__}: {exc}"[:300]
            unreadable.append(reason)
            acked += acked_here
            evidence[name] = {"acknowledged": acked_here, "lost": UNKNOWN, "reason": reason}
            continue
        r = loss(ops, present)
        acked += r.acknowledged
        lost += len(r.lost)
        if r.span_seconds is not None:
            spans.append(r.span_seconds)
        evidence[name] = {
            "acknowledged": r.acknowledged,
            "lost": len(r.lost),
            "lost_sequences_sample": r.lost[:20],
            "lost_span_seconds": r.span_seconds,
            "failed_writes_present": r.failed_but_present,
        }
    measurements: dict[str, Measurement] = {
        "acknowledged_writes": acked,
        "lost_acknowledged_writes": UNKNOWN if unreadable else lost,
        "lost_span_seconds": max(spans) if spans else 0.0,
    }
    if unreadable:
        measurements["lost_unknown_reason"] = "; ".join(unreadable)
        return CheckResult(
            verdict=Verdict.FAIL, evidence=evidence, measurements=measurements,
            summary=f"lost writes unknown ({len(unreadable)} workload(s) could not be read "
                    f"back; allowed {limit}): " + "; ".join(unreadable))
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

"""Checks of the kill-switch, circuit-breaker and simulation-guard claims.

Each reads the history of the oms.orders workload (client view) and what the faults
observed; each fills the summary contract (rto_seconds, rto_error_seconds,
acknowledged_writes, lost_acknowledged_writes) from its own measurements.
"""

from __future__ import annotations

import statistics
from typing import Any

from drillrunner.engine.actions import check
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import Op, OpStatus
from drillrunner.engine.recovery import loss, recovery
from drillrunner.engine.verdicts import CheckResult, Measurement, Verdict
from drillrunner.oms.guard import REFUSAL
from drillrunner.services.oms.faults import (
    GUARD,
    OBSERVE_INTERVAL,
    PG_PAUSE,
    PG_RESUME,
    REDIS_BACK,
    REDIS_DOWN,
    STARTED,
)
from drillrunner.services.oms.probes import kill_switch_state
from drillrunner.services.oms.workload import WORKLOAD
from drillrunner.units import Duration


def _ops(ctx: RunContext) -> list[Op]:
    return ctx.history.ops(WORKLOAD)


def _between(ops: list[Op], start: float, end: float) -> list[Op]:
    return [o for o in ops if o.invoked >= start and o.completed <= end]


def _tally(ops: list[Op]) -> dict[str, int]:
    return {s.value: sum(1 for o in ops if o.status is s) for s in OpStatus}


def _loss(ctx: RunContext) -> tuple[dict[str, Measurement], dict[str, Any]]:
    """Acknowledged orders and those missing from PostgreSQL."""
    client = ctx.workloads.get(WORKLOAD)
    ops = _ops(ctx)
    if client is None or not ops:
        return {"acknowledged_writes": 0, "lost_acknowledged_writes": 0}, {}
    r = loss(ops, client.read_back({o.seq for o in ops}))
    return ({"acknowledged_writes": r.acknowledged, "lost_acknowledged_writes": len(r.lost)},
            {"lost_sequences_sample": r.lost[:20], "failed_orders_present": r.failed_but_present})


def _recovery_after(ctx: RunContext, t: float) -> dict[str, Measurement]:
    r = recovery(_ops(ctx), t)
    return {"rto_seconds": None if r.rto_seconds is None else round(r.rto_seconds, 4),
            "rto_error_seconds": None if r.rto_error_seconds is None
            else round(r.rto_error_seconds, 4)}


@check("oms.kill_switch_fail_closed")
def kill_switch_fail_closed(ctx: RunContext) -> CheckResult:
    """No order is accepted while the kill-switch state cannot be read (Redis unreachable):
    the OMS fails closed. RTO: from Redis reachable again to orders accepted again."""
    down, back = ctx.stash.get(REDIS_DOWN), ctx.stash.get(REDIS_BACK)
    if down is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="Redis was never made unreachable")
    end = back["back_at"] if back else float("inf")
    window = _between(_ops(ctx), down["unreachable_at"], end)
    accepted = [o.seq for o in window if o.status is OpStatus.OK]
    measurements: dict[str, Measurement] = {
        "orders_while_unreadable": len(window),
        "orders_accepted_while_unreadable": len(accepted),
        **(_recovery_after(ctx, back["back_at"]) if back else
           {"rto_seconds": None, "rto_error_seconds": None}),
    }
    lost, lost_ev = _loss(ctx)
    measurements.update(lost)
    evidence = {"window_seconds": None if back is None else round(end - down["unreachable_at"], 3),
                "orders": _tally(window), "accepted_sample": accepted[:20],
                "rejections": sorted({o.error for o in window if o.error})[:5],
                "unreadable_seen_after": down.get("unreadable_seen_after"), **lost_ev}
    if not window:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence, measurements=measurements,
                           summary="no order was placed while Redis was unreachable")
    ok = not accepted
    return CheckResult(
        verdict=Verdict.PASS if ok else Verdict.FAIL,
        summary=(f"{len(accepted)} of {len(window)} orders accepted while the kill-switch "
                 f"state was unreadable" + ("" if ok else ": the OMS fails OPEN")),
        evidence=evidence, measurements=measurements)


@check("oms.kill_switch_survives_restart")
def kill_switch_survives_restart(ctx: RunContext, member: str = "oms-0") -> CheckResult:
    """After the OMS was restarted (and Redis held no kill-switch state), the kill-switch
    is engaged and no order is accepted. RTO: the restart until /readyz answered."""
    started = ctx.stash.get(STARTED)
    if started is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="the OMS was not restarted")
    after = [o for o in _ops(ctx) if o.invoked >= started["started_at"]]
    accepted = [o.seq for o in after if o.status is OpStatus.OK]
    state = kill_switch_state(ctx, member)
    lost, lost_ev = _loss(ctx)
    ready = started.get("ready_seconds")
    measurements: dict[str, Measurement] = {
        "rto_seconds": None if ready is None else round(ready, 4),
        "rto_error_seconds": OBSERVE_INTERVAL if ready is not None else None,
        "oms_start_seconds": round(started["start_seconds"], 4),
        "orders_after_restart": len(after), "orders_accepted_after_restart": len(accepted),
        **lost,
    }
    evidence = {"state_after_restart": state, "orders": _tally(after),
                "accepted_sample": accepted[:20],
                "rejections": sorted({o.error for o in after if o.error})[:5], **lost_ev}
    if not after and state == "unknown":
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence, measurements=measurements,
                           summary="no order placed and the state unreadable after the restart")
    ok = state == "engaged" and not accepted
    return CheckResult(
        verdict=Verdict.PASS if ok else Verdict.FAIL,
        summary=(f"after the restart the kill-switch is {state}; {len(accepted)} of "
                 f"{len(after)} orders accepted"),
        evidence=evidence, measurements=measurements)


def _opened(pause: dict[str, Any]) -> float | None:
    opened: float | None = pause.get("opened_after")
    return opened


@check("oms.circuit_breaker_opens")
def circuit_breaker_opens(ctx: RunContext, open_within: Duration = 5.0,
                          close_within: Duration = 10.0,
                          fast_reject: Duration = 0.1) -> CheckResult:
    """With the PostgreSQL primary frozen, the breaker opens within `open_within`, orders
    are then rejected fast (median under `fast_reject`) without waiting on PostgreSQL,
    /readyz fails; after the resume the breaker closes within `close_within` and orders
    are accepted again. RTO: from the resume to orders accepted again."""
    pause, resume = ctx.stash.get(PG_PAUSE), ctx.stash.get(PG_RESUME)
    if pause is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="PostgreSQL was never paused")
    end = resume["resumed_at"] if resume else float("inf")
    window = _between(_ops(ctx), pause["paused_at"], end)
    fast = [o for o in window if o.status is OpStatus.FAIL and "circuit-open" in (o.error or "")]
    latency = statistics.median(o.completed - o.invoked for o in fast) if fast else None
    slow = [o for o in window if o.status is OpStatus.UNKNOWN]
    opened = _opened(pause)
    closed = resume.get("closed_after") if resume else None
    problems = []
    if opened is None:
        problems.append("the breaker never opened")
    elif opened > open_within:
        problems.append(f"the breaker opened after {opened:.2f}s (limit {open_within:g}s)")
    if not fast:
        problems.append("no order was rejected fast by an open breaker")
    elif latency is not None and latency > fast_reject:
        problems.append(f"rejections took {latency * 1000:.0f} ms (limit "
                        f"{fast_reject * 1000:.0f} ms)")
    if pause.get("not_ready_after") is None:
        problems.append("/readyz stayed 200 with PostgreSQL frozen")
    if resume is None:
        problems.append("PostgreSQL was not resumed")
    elif resume.get("ready_after") is None:
        problems.append("the OMS did not become ready again after the resume")
    elif opened is not None and (closed is None or closed > close_within):
        problems.append(f"the breaker did not close within {close_within:g}s of the resume")
    lost, lost_ev = _loss(ctx)
    measurements: dict[str, Measurement] = {
        "breaker_open_seconds": opened,
        "breaker_close_seconds": closed,
        "not_ready_seconds": pause.get("not_ready_after"),
        "fast_rejections": len(fast),
        "fast_rejection_median_ms": None if latency is None else round(latency * 1000, 2),
        "orders_timed_out": len(slow),
        **(_recovery_after(ctx, resume["resumed_at"]) if resume else
           {"rto_seconds": None, "rto_error_seconds": None}),
        **lost,
    }
    evidence = {"orders_while_paused": _tally(window), "problems": problems,
                "errors": sorted({(o.error or "")[:80] for o in window if o.error})[:6],
                "pause": pause, "resume": resume, **lost_ev}
    if not window:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence, measurements=measurements,
                           summary="no order was placed while PostgreSQL was frozen")
    summary = (f"breaker open after {_s(opened)}, closed {_s(closed)} after the resume; "
               f"{len(fast)} fast rejections, {len(slow)} timed-out orders of {len(window)}")
    return CheckResult(verdict=Verdict.FAIL if problems else Verdict.PASS,
                       summary=summary + ("; " + "; ".join(problems) if problems else ""),
                       evidence=evidence, measurements=measurements)


def _s(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.2f}s"


@check("oms.simulation_guard")
def simulation_guard(ctx: RunContext) -> CheckResult:
    """The OMS refused to start in simulation mode with environment production, saying
    why in its log. No orders are involved: acknowledged and lost are 0; rto_seconds is how
    long the OMS took to serve again with the stack's settings (a later oms.start step)."""
    attempt = ctx.stash.get(GUARD)
    if attempt is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no guarded start was attempted")
    back = ctx.stash.get(STARTED)
    ready = back.get("ready_seconds") if back else None
    measurements: dict[str, Measurement] = {
        "rto_seconds": None if ready is None else round(ready, 4),
        "rto_error_seconds": None if ready is None else OBSERVE_INTERVAL,
        "guarded_start_seconds": attempt["seconds"],
        "acknowledged_writes": 0, "lost_acknowledged_writes": 0,
    }
    said = REFUSAL in attempt.get("log_tail", "")
    if attempt["started"] or attempt.get("running"):
        return CheckResult(verdict=Verdict.FAIL, evidence=attempt, measurements=measurements,
                           summary="the OMS STARTED in simulation mode with environment "
                                   f"production: {attempt.get('info')}")
    return CheckResult(
        verdict=Verdict.PASS if said else Verdict.UNKNOWN, evidence=attempt,
        measurements=measurements,
        summary="the OMS refused to start in simulation mode in production"
                if said else "the OMS did not start, but its log does not say it was the guard")

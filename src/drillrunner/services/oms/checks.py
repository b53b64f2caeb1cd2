"""Checks of the kill-switch, circuit-breaker and simulation-guard claims.

Each reads the history of the oms.orders workload (client view), what the faults observed
and, for the kill-switch, PostgreSQL itself: an order the client saw time out may still
have been committed. The scenario's RTO is the engine's (the client's unavailability, or
the restart a fault measured); these checks report their own phase timings beside it.
"""

from __future__ import annotations

import statistics
from typing import Any

from drillrunner.core.actions import check
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import UNKNOWN, CheckResult, Measurement, Verdict
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import Op, OpStatus
from drillrunner.engine.outcome import LASTING_OPS
from drillrunner.engine.recovery import loss, recovery
from drillrunner.services.oms.faults import (
    GUARD,
    PG_PAUSE,
    PG_RESUME,
    REDIS_BACK,
    REDIS_DOWN,
    STARTED,
)
from drillrunner.services.oms.probes import kill_switch_state
from drillrunner.services.oms.workload import WORKLOAD
from orderservice.guard import REFUSAL

LASTING_SECONDS = 1.0  # orders accepted this long without a rejection count as "back"


def _ops(ctx: RunContext) -> list[Op]:
    return ctx.history.ops(WORKLOAD)


def _between(ops: list[Op], start: float, end: float) -> list[Op]:
    return [o for o in ops if o.invoked >= start and o.completed <= end]


def _tally(ops: list[Op]) -> dict[str, int]:
    return {s.value: sum(1 for o in ops if o.status is s) for s in OpStatus}


def _loss(ctx: RunContext) -> tuple[dict[str, Measurement], dict[str, Any]]:
    """Acknowledged orders and those missing from PostgreSQL ("unknown" if unreadable)."""
    client = ctx.workloads.get(WORKLOAD)
    ops = _ops(ctx)
    if client is None or not ops:
        return {"acknowledged_writes": 0, "lost_acknowledged_writes": 0}, {}
    try:
        r = loss(ops, client.read_back({o.seq for o in ops}))
    except Exception as exc:
        acked = sum(1 for o in ops if o.status is OpStatus.OK)
        reason = f"reading the orders back failed: {type(exc).__name__}: {exc}"[:300]
        return ({"acknowledged_writes": acked, "lost_acknowledged_writes": UNKNOWN,
                 "lost_unknown_reason": reason}, {})
    return ({"acknowledged_writes": r.acknowledged, "lost_acknowledged_writes": len(r.lost)},
            {"lost_sequences_sample": r.lost[:20], "failed_orders_present": r.failed_but_present})


def _committed(ctx: RunContext, ops: list[Op]) -> tuple[list[int] | None, str]:
    """Which of `ops` PostgreSQL holds, whatever the client saw (ok, failed or timed out);
    None with the reason when it cannot be read."""
    client = ctx.workloads.get(WORKLOAD)
    if client is None:
        return None, "no order client"
    try:
        return sorted(client.read_back({o.seq for o in ops})), ""
    except Exception as exc:
        return None, f"reading the orders back failed: {type(exc).__name__}: {exc}"[:300]


def _back_after(ctx: RunContext, t: float, key: str) -> dict[str, Measurement]:
    """Seconds from `t` until orders were accepted again for good (a phase timing)."""
    r = recovery(_ops(ctx), t, LASTING_SECONDS, LASTING_OPS)
    return {key: None if r.recovered_at is None else round(r.recovered_at - t, 4)}


@check("oms.kill_switch_fail_closed")
def kill_switch_fail_closed(ctx: RunContext) -> CheckResult:
    """No order is accepted while the kill-switch state cannot be read (Redis unreachable):
    the OMS fails closed. Every order placed in that window, acknowledged or not, is looked
    up in PostgreSQL: one committed there was accepted, even if the client saw a timeout."""
    down, back = ctx.stash.get(REDIS_DOWN), ctx.stash.get(REDIS_BACK)
    if down is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="Redis was never made unreachable")
    end = back["back_at"] if back else float("inf")
    window = _between(_ops(ctx), down["unreachable_at"], end)
    acked = [o.seq for o in window if o.status is OpStatus.OK]
    committed, why = _committed(ctx, window)
    measurements: dict[str, Measurement] = {
        "orders_while_unreadable": len(window),
        "orders_acknowledged_while_unreadable": len(acked),
        "orders_committed_while_unreadable": UNKNOWN if committed is None else len(committed),
        **(_back_after(ctx, back["back_at"], "orders_back_after_seconds") if back else
           {"orders_back_after_seconds": None}),
    }
    lost, lost_ev = _loss(ctx)
    measurements.update(lost)
    evidence = {"window_seconds": None if back is None else round(end - down["unreachable_at"], 3),
                "orders": _tally(window), "acknowledged_sample": acked[:20],
                "committed_sample": (committed or [])[:20],
                "rejections": sorted({o.error for o in window if o.error})[:5],
                "unreadable_seen_after": down.get("unreadable_seen_after"), **lost_ev}
    if not window:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence, measurements=measurements,
                           summary="no order was placed while Redis was unreachable")
    if committed is None:
        return CheckResult(verdict=Verdict.FAIL, evidence=evidence, measurements=measurements,
                           summary=f"{len(acked)} of {len(window)} orders acknowledged while "
                                   f"the kill-switch state was unreadable; whether others were "
                                   f"committed is unknown: {why}")
    accepted = sorted(set(acked) | set(committed))
    ok = not accepted
    return CheckResult(
        verdict=Verdict.PASS if ok else Verdict.FAIL,
        summary=(f"{len(accepted)} of {len(window)} orders accepted while the kill-switch state "
                 f"was unreadable ({len(acked)} acknowledged, {len(committed)} committed in "
                 "PostgreSQL)" + ("" if ok else ": the OMS fails OPEN")),
        evidence=evidence, measurements=measurements)


@check("oms.kill_switch_survives_restart")
def kill_switch_survives_restart(ctx: RunContext, member: str = "oms-0") -> CheckResult:
    """After the OMS was restarted (and Redis held no kill-switch state), the kill-switch
    is engaged and no order is accepted: none acknowledged, none committed in PostgreSQL."""
    started = ctx.stash.get(STARTED)
    if started is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="the OMS was not restarted")
    after = [o for o in _ops(ctx) if o.invoked >= started["started_at"]]
    acked = [o.seq for o in after if o.status is OpStatus.OK]
    committed, why = _committed(ctx, after)
    state = kill_switch_state(ctx, member)
    lost, lost_ev = _loss(ctx)
    ready = started.get("ready_seconds")
    measurements: dict[str, Measurement] = {
        "ready_after_restart_seconds": None if ready is None else round(ready, 4),
        "oms_start_seconds": round(started["start_seconds"], 4),
        "orders_after_restart": len(after), "orders_acknowledged_after_restart": len(acked),
        "orders_committed_after_restart": UNKNOWN if committed is None else len(committed),
        **lost,
    }
    evidence = {"state_after_restart": state, "orders": _tally(after),
                "acknowledged_sample": acked[:20], "committed_sample": (committed or [])[:20],
                "rejections": sorted({o.error for o in after if o.error})[:5], **lost_ev}
    if not after and state == "unknown":
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence, measurements=measurements,
                           summary="no order placed and the state unreadable after the restart")
    if committed is None:
        return CheckResult(verdict=Verdict.FAIL, evidence=evidence, measurements=measurements,
                           summary=f"after the restart the kill-switch is {state}; whether "
                                   f"orders were committed is unknown: {why}")
    accepted = sorted(set(acked) | set(committed))
    ok = state == "engaged" and not accepted
    return CheckResult(
        verdict=Verdict.PASS if ok else Verdict.FAIL,
        summary=(f"after the restart the kill-switch is {state}; {len(accepted)} of "
                 f"{len(after)} orders accepted ({len(acked)} acknowledged, {len(committed)} "
                 "committed in PostgreSQL)"),
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
        **(_back_after(ctx, resume["resumed_at"], "orders_back_after_resume_seconds")
           if resume else {"orders_back_after_resume_seconds": None}),
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
    why in its log. No orders are involved: acknowledged and lost are 0. How long the OMS
    took to serve again with the stack's settings is measured by a later oms.start step."""
    attempt = ctx.stash.get(GUARD)
    if attempt is None:
        return CheckResult(verdict=Verdict.UNKNOWN, summary="no guarded start was attempted")
    back = ctx.stash.get(STARTED)
    ready = back.get("ready_seconds") if back else None
    measurements: dict[str, Measurement] = {
        "ready_again_seconds": None if ready is None else round(ready, 4),
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

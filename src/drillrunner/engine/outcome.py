"""The outcome rules, written once (pure functions over what the runner observed).

A scenario `passed` only when its faults were injected and seen to take effect (the
workload saw an outage, or the fault measured one, unless the scenario expects none),
every check passed, the recovery was seen and lasted, and every undo and rollback worked.
Something the tool could not observe is never a pass: it is `inconclusive`, with why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from drillrunner.core.errors import ExitCode
from drillrunner.core.verdicts import UNKNOWN, CheckResult, Measurement, Outcome, Verdict
from drillrunner.engine.history import History
from drillrunner.engine.recovery import Recovery, recovery

LASTING_OPS = 3  # a lasting recovery has at least this many successes, beside its duration
CONTRACT = ("rto_seconds", "rto_error_seconds", "acknowledged_writes", "lost_acknowledged_writes")
ENGINE = "engine"


@dataclass(frozen=True)
class ScenarioRecovery:
    """The scenario's recovery: from its workloads' history, or measured by one fault."""

    source: str | None  # "workload", the fault's name, or None when nothing observed it
    outage_observed: bool | None  # None: no workload or fault could observe it
    recovered: bool
    rto_seconds: float | None = None
    rto_error_seconds: float | None = None
    rto_exceeds_seconds: float | None = None
    fault_to_recovery_seconds: float | None = None
    recovered_at: float | None = None  # monotonic: when the lasting recovery was acknowledged
    per_workload: dict[str, dict[str, Any]] = field(default_factory=dict)

    def measurements(self) -> dict[str, Measurement]:
        return {
            "rto_seconds": _round(self.rto_seconds),
            "rto_error_seconds": _round(self.rto_error_seconds),
            "rto_exceeds_seconds": _round(self.rto_exceeds_seconds),
            "rto_source": self.source,
            "fault_to_recovery_seconds": _round(self.fault_to_recovery_seconds),
            "outage_observed": self.outage_observed,
        }

    def describe(self) -> str:
        if self.rto_seconds is not None:
            return f"RTO {self.rto_seconds:.3f}s ± {self.rto_error_seconds or 0:.3f}s"
        if self.rto_exceeds_seconds is not None:
            return f"RTO > {self.rto_exceeds_seconds:.1f}s"
        return "no outage observed" if self.outage_observed is False else "RTO not measured"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def from_workloads(history: History, workloads: Sequence[str], t_fault: float,
                   stable: float, observed_for: float) -> ScenarioRecovery:
    """The worst workload decides: one that never recovered, else the longest RTO.
    `observed_for`: how long after `t_fault` the workloads were watched (a lower bound of
    the RTO of one that never recovered)."""
    if not workloads:
        return ScenarioRecovery(None, None, False)
    results: dict[str, Recovery] = {
        name: recovery(history.ops(name), t_fault, stable, LASTING_OPS) for name in workloads}
    per = {name: _workload_detail(r) for name, r in results.items()}
    observed = any(r.outage_observed for r in results.values())
    if not any(r.ops_after_fault for r in results.values()):
        return ScenarioRecovery("workload", None, False, per_workload=per)
    down = [r for r in results.values() if not r.recovered]
    if down:
        exceeds = max((r.rto_exceeds_seconds or 0.0) for r in down)
        return ScenarioRecovery("workload", observed, False,
                                rto_exceeds_seconds=max(exceeds, observed_for),
                                per_workload=per)
    worst = max(results.values(), key=lambda r: r.rto_seconds or -1.0)
    if worst.rto_seconds is None:  # every workload recovered without an outage
        return ScenarioRecovery("workload", False, True, per_workload=per)
    assert worst.recovered_at is not None
    return ScenarioRecovery("workload", True, True, worst.rto_seconds, worst.rto_error_seconds,
                            fault_to_recovery_seconds=worst.recovered_at - t_fault,
                            recovered_at=worst.recovered_at, per_workload=per)


def from_fault(name: str, measured: dict[str, Measurement], timeout: float,
               workloads_recovered: bool) -> ScenarioRecovery:
    """The RTO a fault measured itself (a restore's duration, a restart until ready)."""
    rto = measured.get("rto_seconds")
    if not isinstance(rto, int | float):  # it ran but never saw the service back
        return ScenarioRecovery(name, True, False, rto_exceeds_seconds=timeout)
    error = measured.get("rto_error_seconds")
    return ScenarioRecovery(name, True, workloads_recovered, float(rto),
                            float(error) if isinstance(error, int | float) else None,
                            fault_to_recovery_seconds=float(rto))


def _workload_detail(r: Recovery) -> dict[str, Any]:
    return {"outage_observed": r.outage_observed, "recovered": r.recovered,
            "rto_seconds": _round(r.rto_seconds), "rto_error_seconds": _round(r.rto_error_seconds),
            "rto_exceeds_seconds": _round(r.rto_exceeds_seconds), "failed_ops": r.failed_ops,
            "unknown_ops": r.unknown_ops, "ops_after_fault": r.ops_after_fault}


@dataclass(frozen=True)
class Observed:
    """What the runner saw of one scenario, for judging."""

    faults_injected: int
    checks: list[tuple[str, CheckResult]]
    recovery: ScenarioRecovery
    recovery_timeout: float
    expect_outage: bool
    undo_failures: list[str]
    steady_after: bool


def judge(o: Observed) -> tuple[Outcome, str]:
    """Failures first (they are findings whatever else happened), then what could not be
    observed, then a pass."""
    if o.faults_injected == 0:
        return Outcome.INCONCLUSIVE, "nothing was injected"
    failed: list[str] = []
    if o.undo_failures:
        failed.append("undo failed (still pending; run drill recover): "
                      + ", ".join(o.undo_failures))
    failed += [f"{n}: {c.summary}" for n, c in o.checks if c.verdict is Verdict.FAIL]
    slo_said_it = any(n == "recovered_within_slo" and c.verdict is Verdict.FAIL
                      for n, c in o.checks)
    if not (o.recovery.recovered or o.recovery.outage_observed is None or slo_said_it):
        failed.append(f"never recovered within {o.recovery_timeout:g}s ("
                      + o.recovery.describe() + ")")
    if failed:
        return Outcome.FAILED, "; ".join(failed)
    inconclusive: list[str] = []
    if o.recovery.outage_observed is None:
        inconclusive.append("no workload or fault observed the service after the fault")
    elif o.expect_outage and not o.recovery.outage_observed:
        inconclusive.append("the fault had no observable effect: no operation failed or "
                            "stalled (a scenario that expects none says expect_outage: false)")
    if not o.checks:
        inconclusive.append("nothing was checked")
    inconclusive += [f"{n} gave no verdict: {c.summary}" for n, c in o.checks
                     if c.verdict is Verdict.UNKNOWN]
    if inconclusive:
        return Outcome.INCONCLUSIVE, "; ".join(inconclusive)
    note = "" if o.steady_after else " (steady state deviated until rollback)"
    return Outcome.PASSED, f"every check passed, {o.recovery.describe()}{note}"


def scenario_measurements(rec: ScenarioRecovery, checks: list[tuple[str, CheckResult]],
                          seconds: float) -> dict[str, Measurement | dict[str, str]]:
    """The scenario's figures, each from one named source: the engine's recovery, and the
    loss of the check that found the most (an unknown loss is worse than any count).
    Other checks' figures stay with their checks."""
    out: dict[str, Any] = {k: None for k in CONTRACT}
    out.update(rec.measurements())
    sources = {k: ENGINE for k in rec.measurements()}
    loss = [(n, c) for n, c in checks if "lost_acknowledged_writes" in c.measurements]
    if loss:
        name, chosen = max(loss, key=lambda nc: _loss_rank(nc[1].measurements))
        for key in ("acknowledged_writes", "lost_acknowledged_writes", "lost_unknown_reason",
                    "lost_span_seconds"):
            if key in chosen.measurements:
                out[key] = chosen.measurements[key]
                sources[key] = name
    out["scenario_seconds"] = round(seconds, 3)
    out["sources"] = sources
    return out


def _loss_rank(m: dict[str, Measurement]) -> float:
    lost = m.get("lost_acknowledged_writes")
    return float("inf") if lost == UNKNOWN else float(lost) if isinstance(lost, int) else -1.0


FAILING = (Outcome.FAILED, Outcome.ABORTED, Outcome.BASELINE_NOT_MET)


def run_outcome(outcomes: Sequence[Outcome], interrupted: bool) -> Outcome:
    """Failed if anything failed (even when interrupted or another scenario errored), else
    interrupted, else error, else inconclusive, else passed. A run of nothing is
    inconclusive."""
    for o in FAILING:
        if o in outcomes:
            return o
    if interrupted or Outcome.INTERRUPTED in outcomes:
        return Outcome.INTERRUPTED
    for o in (Outcome.ERROR, Outcome.INCONCLUSIVE):
        if o in outcomes:
            return o
    return Outcome.PASSED if outcomes else Outcome.INCONCLUSIVE


EXIT = {Outcome.PASSED: ExitCode.PASSED, Outcome.FAILED: ExitCode.FAILED,
        Outcome.ABORTED: ExitCode.FAILED, Outcome.BASELINE_NOT_MET: ExitCode.FAILED,
        Outcome.INTERRUPTED: ExitCode.INTERRUPTED, Outcome.ERROR: ExitCode.INCONCLUSIVE,
        Outcome.INCONCLUSIVE: ExitCode.INCONCLUSIVE}

"""Runs scenarios in the order of DESIGN §3 and always rolls back what it injected.

preflight -> steady state (else baseline-not-met, nothing injected) -> workload -> faults
-> wait for recovery (polling) -> stop workload -> checks -> steady state again -> undos of
the faults in reverse order, then the scenario's rollbacks -> the stack's steady state again.
"""

from __future__ import annotations

import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from drillrunner.engine.actions import ActionKind, Catalog
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import FaultEvent, History
from drillrunner.engine.journal import Journal
from drillrunner.engine.recovery import lasting_success
from drillrunner.engine.schedule import WorkloadThread
from drillrunner.engine.verdicts import CheckResult, FaultResult, Measurement, Outcome, Verdict
from drillrunner.model.loader import Document
from drillrunner.model.scenario import ActionStep, ProbeStep, Scenario
from drillrunner.targets.base import Target
from drillrunner.units import parse_rate
from drillrunner.waiting import WaitTimeout, poll_until

CONTRACT = ("rto_seconds", "rto_error_seconds", "acknowledged_writes", "lost_acknowledged_writes")
STEADY_GRACE = 15.0  # a previous scenario's rollback may still be settling
WARMUP_OPS = 3
RESTORE_TIMEOUT = 90.0


class Phase(StrEnum):
    PREFLIGHT = "preflight"
    STEADY_STATE = "steady state"
    WORKLOAD = "workload"
    FAULTS = "faults"
    RECOVERY = "waiting for recovery"
    CHECKS = "checks"
    STEADY_STATE_AFTER = "steady state again"
    ROLLBACK = "rollback"
    DONE = "done"


class Observer(Protocol):
    def phase(self, scenario: str, phase: Phase, detail: str = "") -> None: ...


class Interrupted(BaseException):
    """SIGTERM or SIGINT: the run stops, and its faults are still undone."""


class ScenarioTimeout(BaseException):
    """The scenario's overall deadline passed (SIGALRM): it ends as `error`, rolled back.
    A BaseException so that no `except Exception` in a fault swallows it."""


@dataclass
class ScenarioResult:
    name: str
    title: str
    claims: list[str]
    outcome: Outcome = Outcome.INCONCLUSIVE
    reason: str = ""
    checks: list[tuple[str, CheckResult]] = field(default_factory=list)
    measurements: dict[str, Measurement] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    faults_injected: int = 0


class _Baseline(Exception):
    pass


@dataclass
class _Undo:
    action: str
    args: dict[str, Any]
    id: int


class Runner:
    def __init__(
        self,
        target: Target,
        catalog: Catalog,
        journal: Journal,
        observer: Observer,
        *,
        dry_run: bool = False,
    ) -> None:
        self.target = target
        self.catalog = catalog
        self.journal = journal
        self.observer = observer
        self.dry_run = dry_run
        self._rolling_back = False
        self._interrupt_pending: str | None = None
        self.interrupted = False
        self._alarm = False  # SIGALRM enforces the scenario's deadline (main thread only)
        self._phase = Phase.PREFLIGHT

    # -- signals --------------------------------------------------------------------------
    @contextmanager
    def signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM interrupt the run, except during rollback, which must finish."""

        def handler(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if self._rolling_back:
                self._interrupt_pending = name
                self.journal.append("signal-deferred", signal=name)
                return
            raise Interrupted(name)

        def deadline(_signum: int, _frame: Any) -> None:
            if self._rolling_back:  # the rollback always finishes
                self.journal.append("timeout-deferred", phase=self._phase.value)
                return
            raise ScenarioTimeout(self._phase.value)

        if threading.current_thread() is not threading.main_thread():
            yield
            return
        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        old[signal.SIGALRM] = signal.signal(signal.SIGALRM, deadline)
        self._alarm = True
        try:
            yield
        finally:
            self._alarm = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            for s, h in old.items():
                signal.signal(s, h)

    def _enter(self, scenario: str, phase: Phase, detail: str = "") -> None:
        self._phase = phase
        self.observer.phase(scenario, phase, detail)

    def _arm(self, seconds: float) -> None:
        if self._alarm:
            signal.setitimer(signal.ITIMER_REAL, seconds)

    # -- one scenario ---------------------------------------------------------------------
    def run_scenario(self, doc: Document) -> ScenarioResult:
        s = doc.model
        assert isinstance(s, Scenario)
        name = s.metadata.name
        res = ScenarioResult(name, s.metadata.title, list(s.metadata.claims))
        res.started = time.monotonic()
        history = History()
        ctx = RunContext(
            target=self.target,
            scenario=name,
            history=history,
            record=lambda event, **data: self.journal.append(event, scenario=name, **data),
            slo={"rto": s.slo.rto, "lost_acknowledged_writes": s.slo.lost_acknowledged_writes},
        )
        undos: list[_Undo] = []
        threads: list[WorkloadThread] = []
        self.journal.append("scenario-start", scenario=name, file=str(doc.path),
                            title=s.metadata.title, claims=s.metadata.claims,
                            slo=s.slo.model_dump(mode="json"), dry_run=self.dry_run)
        fault_measurements: dict[str, Measurement] = {}
        attempted = 0  # steps started, even if they raised: their effects must be undone
        self._arm(s.timeout)
        try:
            self._enter(name, Phase.STEADY_STATE)
            self._steady_state(ctx, s.steady_state, "steady-state", STEADY_GRACE)
            if self.dry_run:
                res.outcome, res.reason = Outcome.INCONCLUSIVE, "dry run: nothing injected"
                return res
            self._enter(name, Phase.WORKLOAD)
            threads = self._start_workloads(ctx, s)
            self._warm_up(ctx, threads)
            for step in s.faults:
                self._check_workloads(threads)
                self._enter(name, Phase.FAULTS, step.name)
                if step.after:
                    self._pause(step.after, f"{step.after:g}s before {step.name}")
                attempted += 1
                fm = self._inject(ctx, step, undos)
                fault_measurements.update(fm)
                res.faults_injected += 1
            self._enter(name, Phase.RECOVERY)
            self._wait_recovery(ctx, s, threads)
            self._stop_workloads(ctx, threads)
            self._enter(name, Phase.CHECKS)
            res.checks = self._checks(ctx, s)
            self._enter(name, Phase.STEADY_STATE_AFTER)
            after_ok = self._steady_state_after(ctx, s.steady_state)
            res.outcome, res.reason = _judge(res, after_ok)
        except _Baseline as exc:
            res.outcome, res.reason = Outcome.BASELINE_NOT_MET, str(exc)
        except Interrupted as exc:
            self.interrupted = True
            res.outcome, res.reason = Outcome.INTERRUPTED, f"interrupted by {exc}"
        except KeyboardInterrupt:
            self.interrupted = True
            res.outcome, res.reason = Outcome.INTERRUPTED, "interrupted by SIGINT"
        except ScenarioTimeout as exc:
            res.outcome = Outcome.ERROR
            res.reason = f"timed out: the scenario's {s.timeout:g}s deadline passed during {exc}"
            self.journal.append("error", scenario=name, error=res.reason)
        except Exception as exc:
            res.outcome, res.reason = Outcome.ERROR, f"{type(exc).__name__}: {exc}"
            self.journal.append("error", scenario=name, error=res.reason,
                                traceback=traceback.format_exc(limit=8))
        finally:
            self._arm(0)  # rollback is not bound by the deadline: it must finish
            self._stop_workloads(ctx, threads)
            restored = self._rollback(ctx, s, undos, attempted > 0)
            if not restored and res.outcome not in (Outcome.INTERRUPTED,):
                res.outcome = Outcome.worst([res.outcome, Outcome.ERROR])
                res.reason = (res.reason + "; " if res.reason else "") + (
                    "the stack did not return to its steady state after rollback")
            for client in ctx.workloads.values():
                _quietly(client.close)
            res.ended = time.monotonic()
            res.measurements = _measurements(res, fault_measurements)
            self.journal.append(
                "scenario-end", scenario=name, outcome=res.outcome.value, reason=res.reason,
                measurements=res.measurements, seconds=res.ended - res.started)
            self.observer.phase(name, Phase.DONE, res.outcome.value)
        return res

    # -- phases ---------------------------------------------------------------------------
    def _probe(self, ctx: RunContext, step: ProbeStep) -> tuple[bool, Any]:
        spec = self.catalog.get(step.probe)
        assert spec is not None and spec.kind is ActionKind.PROBE
        try:
            value = spec.call(ctx, spec.bind(step.args))
        except Exception as exc:
            return False, f"error: {type(exc).__name__}: {exc}"
        return step.holds(value), value

    def _probes_hold(self, ctx: RunContext, steps: list[ProbeStep], event: str) -> bool:
        ok = True
        for step in steps:
            holds, value = self._probe(ctx, step)
            self.journal.append(event, scenario=ctx.scenario, probe=step.probe, value=value,
                                holds=holds, tolerance=step.tolerance.describe()
                                if step.tolerance else "is true")
            ok = ok and holds
        return ok

    def _steady_state(self, ctx: RunContext, steps: list[ProbeStep], event: str,
                      grace: float) -> None:
        try:
            poll_until(lambda: self._probes_hold(ctx, steps, event), timeout=grace,
                       interval=0.5, what="the steady state")
        except WaitTimeout:
            raise _Baseline("the steady state did not hold; nothing was injected") from None

    def _steady_state_after(self, ctx: RunContext, steps: list[ProbeStep]) -> bool:
        """Observed, not awaited: a failover may leave a replica missing until rollback."""
        return self._probes_hold(ctx, steps, "steady-state-after")

    def _start_workloads(self, ctx: RunContext, s: Scenario) -> list[WorkloadThread]:
        threads = []
        for step in s.workload:
            spec = self.catalog.get(step.name)
            assert spec is not None
            args = {k: v for k, v in step.args.items() if k != "rate"}
            rate = parse_rate(step.args.get("rate", 20))
            client = spec.call(ctx, spec.bind(args))
            ctx.workloads[step.name] = client
            t = WorkloadThread(step.name, client, rate, ctx.history, ctx.record)
            self.journal.append("workload-start", scenario=ctx.scenario, workload=step.name,
                                rate=rate, args=args)
            t.start()
            threads.append(t)
        return threads

    def _warm_up(self, ctx: RunContext, threads: list[WorkloadThread]) -> None:
        def warm() -> bool:
            self._check_workloads(threads)
            return all(
                sum(1 for o in ctx.history.ops(t.name) if o.status == "ok") >= WARMUP_OPS
                for t in threads)

        try:
            poll_until(warm, timeout=15.0, interval=0.02, what="the workload's first writes")
        except WaitTimeout:
            raise _Baseline("the workload could not write before any fault") from None

    def _check_workloads(self, threads: list[WorkloadThread]) -> None:
        for t in threads:
            if t.error is not None:
                raise RuntimeError(f"workload {t.name} crashed: {t.error!r}")

    def _pause(self, seconds: float, what: str) -> None:
        """A scheduled delay between steps (part of the scenario, not a wait for state)."""
        self.journal.append("delay", seconds=seconds, what=what)
        time.sleep(seconds)

    def _inject(self, ctx: RunContext, step: ActionStep, undos: list[_Undo]) -> dict[str, Any]:
        spec = self.catalog.get(step.name)
        assert spec is not None
        bound = spec.bind(step.args)

        def sink(action: str, args: dict[str, Any]) -> None:
            if self.catalog.get(action) is None:
                raise RuntimeError(f"{step.name} declared an unknown undo {action}")
            undo = _Undo(action, args, len(undos))
            self.journal.append("undo-intent", scenario=ctx.scenario, undo_id=undo.id,
                                fault=step.name, action=action, args=args)
            undos.append(undo)

        ctx._undo_sink = sink
        kind = spec.kind.value
        invoked = time.monotonic()
        self.journal.append(f"{kind}-invoke", scenario=ctx.scenario, name=step.name,
                            args=step.args, t=invoked)
        ok = False
        try:
            result = spec.call(ctx, bound)
            ok = True
        finally:
            ctx._undo_sink = None
            returned = time.monotonic()
            if spec.kind is ActionKind.FAULT:
                ctx.history.add_fault(FaultEvent(step.name, invoked, returned, ok))
        data = result.model_dump(mode="json") if isinstance(result, FaultResult) else {}
        self.journal.append(f"{kind}-return", scenario=ctx.scenario, name=step.name,
                            t=returned, seconds=returned - invoked, result=data)
        return dict(data.get("measurements", {}))

    def _wait_recovery(self, ctx: RunContext, s: Scenario, threads: list[WorkloadThread]) -> None:
        faults = ctx.history.faults()
        since = faults[-1].returned if faults else time.monotonic()
        settle = s.recovery.settle
        min_ops = WARMUP_OPS

        def recovered() -> bool:
            self._check_workloads(threads)
            for t in threads:
                if not lasting_success(ctx.history.ops(t.name), since, min_ops, settle):
                    return False
            return not s.recovery.probes or self._probes_hold(ctx, s.recovery.probes,
                                                               "recovery-probe")

        started = time.monotonic()
        try:
            poll_until(recovered, timeout=s.recovery.timeout, interval=0.05,
                       what="recovery")
            self.journal.append("recovered", scenario=ctx.scenario,
                                waited=time.monotonic() - started)
        except WaitTimeout:
            self.journal.append("recovery-timeout", scenario=ctx.scenario,
                                timeout=s.recovery.timeout)

    def _stop_workloads(self, ctx: RunContext, threads: list[WorkloadThread]) -> None:
        for t in threads:
            if t._thread.is_alive():
                t.stop()
                self.journal.append("workload-stop", scenario=ctx.scenario, workload=t.name,
                                    ops=len(ctx.history.ops(t.name)))

    def _checks(self, ctx: RunContext, s: Scenario) -> list[tuple[str, CheckResult]]:
        out = []
        for step in s.verify:
            spec = self.catalog.get(step.check)
            assert spec is not None
            try:
                result = spec.call(ctx, spec.bind(step.args))
                if not isinstance(result, CheckResult):
                    raise TypeError(f"check returned {type(result).__name__}")
            except Exception as exc:
                result = CheckResult(verdict=Verdict.UNKNOWN,
                                     summary=f"the check crashed: {type(exc).__name__}: {exc}")
            self.journal.append("check", scenario=ctx.scenario, check=step.check,
                                **result.model_dump(mode="json"))
            out.append((step.check, result))
        return out

    def _rollback(self, ctx: RunContext, s: Scenario, undos: list[_Undo], injected: bool) -> bool:
        """Undo every fault (newest first), run the rollbacks, then wait for steady state."""
        if not (undos or injected):
            return True
        self._rolling_back = True
        try:
            self.observer.phase(ctx.scenario, Phase.ROLLBACK)
            for undo in reversed(undos):
                self._run_action(ctx, undo.action, undo.args, "undo", undo_id=undo.id)
            for step in s.rollback:
                self._run_action(ctx, step.name, step.args, "rollback")
            try:
                self._steady_state(ctx, s.steady_state, "steady-state-restored",
                                   RESTORE_TIMEOUT)
                return True
            except _Baseline:
                return False
        finally:
            self._rolling_back = False
            if self._interrupt_pending:
                self.interrupted = True

    def _run_action(self, ctx: RunContext, name: str, args: dict[str, Any], kind: str,
                    **extra: Any) -> None:
        spec = self.catalog.get(name)
        self.journal.append(f"{kind}-start", scenario=ctx.scenario, action=name, args=args,
                            **extra)
        try:
            assert spec is not None, f"unknown action {name}"
            result = spec.call(ctx, spec.bind(args))
            data = result.model_dump(mode="json") if isinstance(result, FaultResult) else {}
            self.journal.append(f"{kind}-done", scenario=ctx.scenario, action=name,
                                result=data, **extra)
        except Exception as exc:
            self.journal.append(f"{kind}-failed", scenario=ctx.scenario, action=name,
                                error=f"{type(exc).__name__}: {exc}", **extra)


def _judge(res: ScenarioResult, after_ok: bool) -> tuple[Outcome, str]:
    verdicts = [c.verdict for _, c in res.checks]
    if res.faults_injected == 0:
        return Outcome.INCONCLUSIVE, "nothing was injected"
    if not verdicts:
        return Outcome.INCONCLUSIVE, "nothing was checked"
    failed = [n for n, c in res.checks if c.verdict is Verdict.FAIL]
    if failed:
        return Outcome.FAILED, "failed: " + ", ".join(failed)
    unknown = [n for n, c in res.checks if c.verdict is Verdict.UNKNOWN]
    if unknown:
        return Outcome.INCONCLUSIVE, "no verdict from: " + ", ".join(unknown)
    note = "" if after_ok else " (steady state deviated until rollback)"
    return Outcome.PASSED, "every check passed" + note


def _measurements(res: ScenarioResult, faults: dict[str, Measurement]) -> dict[str, Measurement]:
    out: dict[str, Measurement] = {k: None for k in CONTRACT}
    out.update(faults)
    for _, check in res.checks:
        out.update(check.measurements)
    out["scenario_seconds"] = round(res.ended - res.started, 3)
    return out


def _quietly(fn: Callable[[], Any]) -> None:
    with suppress(Exception):  # closing a client of a dead server may fail
        fn()

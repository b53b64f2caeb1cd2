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

from drillrunner.core.actions import ActionKind, Catalog
from drillrunner.core.units import parse_rate
from drillrunner.core.verdicts import CheckResult, FaultResult, Measurement, Outcome, Verdict
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import FaultEvent, History
from drillrunner.engine.outcome import (
    LASTING_OPS,
    Observed,
    ScenarioRecovery,
    from_fault,
    from_workloads,
    judge,
    scenario_measurements,
)
from drillrunner.engine.recovery import lasting_success
from drillrunner.evidence.journal import Journal
from drillrunner.model.loader import Document
from drillrunner.model.scenario import ActionStep, ProbeStep, Scenario
from drillrunner.targets.base import Target

STEADY_GRACE = 15.0  # a previous scenario's rollback may still be settling
WARMUP_OPS = 3
RESTORE_TIMEOUT = 90.0
SLO_CHECK = "recovered_within_slo"


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
    measurements: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    faults_injected: int = 0
    undo_failures: list[str] = field(default_factory=list)


class _Baseline(Exception):
    pass


@dataclass
class _Undo:
    action: str
    args: dict[str, Any]
    id: int
    rollback: bool = False  # a scenario's rollback step, journaled before the faults


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
        self._undo_failed = False

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
        ctx = RunContext(
            target=self.target,
            scenario=name,
            history=History(),
            record=lambda event, **data: self.journal.append(event, scenario=name, **data),
            slo={"rto": s.slo.rto, "lost_acknowledged_writes": s.slo.lost_acknowledged_writes},
        )
        undos: list[_Undo] = []
        self.journal.append("scenario-start", scenario=name, file=str(doc.path),
                            title=s.metadata.title, claims=s.metadata.claims,
                            slo=s.slo.model_dump(mode="json"), dry_run=self.dry_run,
                            recovery=s.recovery.model_dump(mode="json"))
        measured: dict[str, dict[str, Measurement]] = {}  # fault name -> its measurements
        attempted = 0  # steps started, even if they raised: their effects must be undone
        self._arm(s.timeout)
        try:
            self._enter(name, Phase.STEADY_STATE)
            self._steady_state(ctx, s.steady_state, "steady-state", STEADY_GRACE)
            if self.dry_run:
                res.outcome, res.reason = Outcome.INCONCLUSIVE, "dry run: nothing injected"
                return res
            self._enter(name, Phase.WORKLOAD)
            undos += self._rollback_intents(ctx, s)
            self._start_workloads(ctx, s)
            self._warm_up(ctx)
            for step in s.faults:
                self._check_workloads(ctx)
                self._enter(name, Phase.FAULTS, step.name)
                if step.after:
                    self._pause(step.after, f"{step.after:g}s before {step.name}")
                attempted += 1
                measured[step.name] = self._inject(ctx, step, undos)
                res.faults_injected += 1
            self._enter(name, Phase.RECOVERY)
            self._wait_recovery(ctx, s)
            self._stop_workloads(ctx)
            ctx.recovery = self._recovery(ctx, s, measured)
            self._enter(name, Phase.CHECKS)
            res.checks = self._checks(ctx, s)
            self._enter(name, Phase.STEADY_STATE_AFTER)
            after_ok = self._steady_state_after(ctx, s.steady_state)
            res.outcome, res.reason = judge(Observed(
                res.faults_injected, res.checks, ctx.recovery, s.recovery.timeout,
                s.recovery.expect_outage, [], after_ok))
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
            self._stop_workloads(ctx)
            restored = self._rollback(ctx, s, undos, attempted > 0, res)
            self._settle_outcome(res, restored)
            for client in ctx.workloads.values():
                _quietly(client.close)
            res.ended = time.monotonic()
            rec = ctx.recovery or ScenarioRecovery(None, None, False)
            res.measurements = scenario_measurements(rec, res.checks, res.ended - res.started)
            self.journal.append(
                "scenario-end", scenario=name, outcome=res.outcome.value, reason=res.reason,
                measurements=res.measurements, seconds=res.ended - res.started,
                undo_failures=res.undo_failures,
                recovery_detail=rec.per_workload)
            self.observer.phase(name, Phase.DONE, res.outcome.value)
        return res

    @property
    def undo_pending(self) -> bool:
        """An undo or rollback failed: the stack is not as it was, so no further scenario
        may run and the lock stays until `drill recover` has replayed it."""
        return self._undo_failed

    def _settle_outcome(self, res: ScenarioResult, restored: bool) -> None:
        """A failed undo fails the scenario (whatever else it found); a stack that did not
        come back to its steady state is an error unless the scenario already failed."""
        if res.undo_failures and res.outcome is not Outcome.INTERRUPTED:
            note = ("undo failed (still pending; run drill recover): "
                    + ", ".join(res.undo_failures))
            if res.outcome is Outcome.FAILED:
                res.reason = f"{res.reason}; {note}"
            else:
                res.outcome, res.reason = Outcome.FAILED, f"failed: {note}" + (
                    f" (before that: {res.outcome.value}: {res.reason})" if res.reason else "")
        if not restored and res.outcome is not Outcome.INTERRUPTED:
            if res.outcome is not Outcome.FAILED:
                res.outcome = Outcome.ERROR
            res.reason = (res.reason + "; " if res.reason else "") + (
                "the stack did not return to its steady state after rollback")

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

    def _rollback_intents(self, ctx: RunContext, s: Scenario) -> list[_Undo]:
        """The scenario's rollbacks are journaled as pending undos before anything is
        injected (the oldest, so replayed last), so `drill recover` runs them too."""
        out = []
        for i, step in enumerate(s.rollback):
            undo = _Undo(step.name, step.args, i, rollback=True)
            self.journal.append("undo-intent", scenario=ctx.scenario, undo_id=undo.id,
                                fault=None, action=step.name, args=step.args, rollback=True)
            out.append(undo)
        return out

    def _start_workloads(self, ctx: RunContext, s: Scenario) -> None:
        for step in s.workload:
            spec = self.catalog.get(step.name)
            assert spec is not None
            args = {k: v for k, v in step.args.items() if k != "rate"}
            rate = parse_rate(step.args.get("rate", 20))
            client = spec.call(ctx, spec.bind(args))
            self.journal.append("workload-start", scenario=ctx.scenario, workload=step.name,
                                rate=rate, args=args)
            ctx.start_workload(step.name, client, rate)

    def _warm_up(self, ctx: RunContext) -> None:
        def warm() -> bool:
            self._check_workloads(ctx)
            return all(
                sum(1 for o in ctx.history.ops(t.name) if o.status == "ok") >= WARMUP_OPS
                for t in ctx.threads)

        try:
            poll_until(warm, timeout=15.0, interval=0.02, what="the workload's first writes")
        except WaitTimeout:
            raise _Baseline("the workload could not write before any fault") from None

    def _check_workloads(self, ctx: RunContext) -> None:
        for t in ctx.threads:
            if t.error is not None:
                raise RuntimeError(f"workload {t.name} crashed: {t.error!r}")

    def _pause(self, seconds: float, what: str) -> None:
        """A scheduled delay between steps (part of the scenario, not a wait for state)."""
        self.journal.append("delay", seconds=seconds, what=what)
        time.sleep(seconds)

    def _inject(self, ctx: RunContext, step: ActionStep, undos: list[_Undo]
                ) -> dict[str, Measurement]:
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

    def _wait_recovery(self, ctx: RunContext, s: Scenario) -> None:
        """Poll until every workload has succeeded without a failure for `stable` seconds
        and the recovery probes (without workloads: the steady state) have held as long.
        Journals `recovered` or `recovery-timeout`."""
        faults = ctx.history.faults()
        since = faults[-1].returned if faults else time.monotonic()
        stable = s.recovery.stable
        probes = s.recovery.probes or ([] if ctx.threads else s.steady_state)
        held_since: list[float] = []

        def recovered() -> bool:
            self._check_workloads(ctx)
            for t in ctx.threads:
                if not lasting_success(ctx.history.ops(t.name), since, LASTING_OPS, stable):
                    return False
            if not probes:
                return True
            if not self._probes_hold(ctx, probes, "recovery-probe"):
                held_since.clear()
                return False
            held_since[:] = held_since or [time.monotonic()]
            return time.monotonic() - held_since[0] >= stable

        started = time.monotonic()
        try:
            poll_until(recovered, timeout=s.recovery.timeout, interval=0.05, what="recovery")
            self.journal.append("recovered", scenario=ctx.scenario,
                                waited=time.monotonic() - started, stable=stable)
        except WaitTimeout:
            self.journal.append("recovery-timeout", scenario=ctx.scenario,
                                timeout=s.recovery.timeout)

    def _recovery(self, ctx: RunContext, s: Scenario, measured: dict[str, dict[str, Any]]
                  ) -> ScenarioRecovery:
        faults = ctx.history.faults()
        names = [t.name for t in ctx.threads]
        if s.recovery.rto_from is not None:
            workloads_ok = all(lasting_success(ctx.history.ops(n), faults[-1].returned,
                                               LASTING_OPS, s.recovery.stable) for n in names)
            return from_fault(s.recovery.rto_from, measured.get(s.recovery.rto_from, {}),
                              s.recovery.timeout, workloads_ok)
        t_fault = faults[0].invoked if faults else time.monotonic()
        return from_workloads(ctx.history, names, t_fault, s.recovery.stable,
                              time.monotonic() - t_fault)

    def _stop_workloads(self, ctx: RunContext) -> None:
        for t in ctx.threads:
            if t.running:
                t.stop()
                self.journal.append("workload-stop", scenario=ctx.scenario, workload=t.name,
                                    ops=len(ctx.history.ops(t.name)))

    def _checks(self, ctx: RunContext, s: Scenario) -> list[tuple[str, CheckResult]]:
        steps = [(step.check, step.args) for step in s.verify]
        if s.slo.rto is not None and SLO_CHECK not in {c for c, _ in steps}:
            steps.append((SLO_CHECK, {}))  # slo.rto is always judged, listed or not
        out = []
        for name, args in steps:
            spec = self.catalog.get(name)
            try:
                if spec is None:
                    raise KeyError(f"{name} is not in the catalog")
                result = spec.call(ctx, spec.bind(args))
                if not isinstance(result, CheckResult):
                    raise TypeError(f"check returned {type(result).__name__}")
            except Exception as exc:
                result = CheckResult(verdict=Verdict.UNKNOWN,
                                     summary=f"the check crashed: {type(exc).__name__}: {exc}")
            self.journal.append("check", scenario=ctx.scenario, check=name,
                                implied=(name, args) not in
                                [(st.check, st.args) for st in s.verify],
                                **result.model_dump(mode="json"))
            out.append((name, result))
        return out

    def _rollback(self, ctx: RunContext, s: Scenario, undos: list[_Undo], injected: bool,
                  res: ScenarioResult) -> bool:
        """Undo every fault (newest first), run the rollbacks, then wait for steady state.
        A failed undo stays pending in the journal and fails the scenario."""
        if not (injected or any(not u.rollback for u in undos)):
            for undo in undos:  # nothing was injected: the journaled rollbacks are moot
                self.journal.append("undo-done", scenario=ctx.scenario, undo_id=undo.id,
                                    action=undo.action, result={"summary": "not needed"})
            return True
        self._rolling_back = True
        try:
            self.observer.phase(ctx.scenario, Phase.ROLLBACK)
            ordered = ([u for u in reversed(undos) if not u.rollback]
                       + [u for u in undos if u.rollback])
            for undo in ordered:
                kind = "rollback" if undo.rollback else "undo"
                if not self._run_undo(ctx, undo, kind):
                    res.undo_failures.append(undo.action)
                    self._undo_failed = True
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

    def _run_undo(self, ctx: RunContext, undo: _Undo, kind: str) -> bool:
        spec = self.catalog.get(undo.action)
        self.journal.append(f"{kind}-start", scenario=ctx.scenario, action=undo.action,
                            args=undo.args, undo_id=undo.id)
        try:
            assert spec is not None, f"unknown action {undo.action}"
            result = spec.call(ctx, spec.bind(undo.args))
        except Exception as exc:
            self.journal.append(f"{kind}-failed", scenario=ctx.scenario, action=undo.action,
                                error=f"{type(exc).__name__}: {exc}", undo_id=undo.id)
            return False
        data = result.model_dump(mode="json") if isinstance(result, FaultResult) else {}
        self.journal.append(f"{kind}-done", scenario=ctx.scenario, action=undo.action,
                            result=data, undo_id=undo.id)
        return True


def _quietly(fn: Callable[[], Any]) -> None:
    with suppress(Exception):  # closing a client of a dead server may fail
        fn()

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

from drillrunner.core.actions import Catalog
from drillrunner.core.verdicts import CheckResult, Measurement, Outcome
from drillrunner.engine import verify, watch, workloads
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
from drillrunner.engine.invoke import Invoker, error_text
from drillrunner.engine.outcome import Observed, ScenarioRecovery, judge, scenario_measurements
from drillrunner.engine.probes import BaselineNotMet, Probes
from drillrunner.engine.undo import Undos
from drillrunner.evidence.events import Event
from drillrunner.evidence.journal import Journal
from drillrunner.model.loader import Document
from drillrunner.model.scenario import ActionStep, Scenario
from drillrunner.targets.base import Target

STEADY_GRACE = 15.0  # a previous scenario's rollback may still be settling
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
    measurements: dict[str, Any] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    faults_injected: int = 0
    undo_failures: list[str] = field(default_factory=list)


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
        self.invoker = Invoker(catalog, journal)
        self.probes = Probes(self.invoker)
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
        """SIGINT/SIGTERM interrupt the run, except during the cleanup (workloads stopped,
        undos, rollback), which must finish: there they are deferred."""

        def handler(signum: int, _frame: Any) -> None:
            name = signal.Signals(signum).name
            if self._rolling_back:
                self._interrupt_pending = name
                self.journal.append(Event.SIGNAL_DEFERRED, signal=name)
                return
            raise Interrupted(name)

        def deadline(_signum: int, _frame: Any) -> None:
            if self._rolling_back:  # the rollback always finishes
                self.journal.append(Event.TIMEOUT_DEFERRED, phase=self._phase.value)
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
        undos = Undos(self.invoker)
        self.journal.append(Event.SCENARIO_START, scenario=name, file=str(doc.path),
                            title=s.metadata.title, claims=s.metadata.claims,
                            slo=s.slo.model_dump(mode="json"), dry_run=self.dry_run,
                            recovery=s.recovery.model_dump(mode="json"))
        measured: dict[str, dict[str, Measurement]] = {}  # fault name -> its measurements
        attempted = 0  # steps started, even if they raised: their effects must be undone
        self._arm(s.timeout)
        try:
            self._enter(name, Phase.STEADY_STATE)
            self.probes.await_steady(ctx, s.steady_state, Event.STEADY_STATE, STEADY_GRACE)
            if self.dry_run:
                res.outcome, res.reason = Outcome.INCONCLUSIVE, "dry run: nothing injected"
                return res
            self._enter(name, Phase.WORKLOAD)
            undos.intend_rollbacks(ctx, s.rollback)
            workloads.start(self.invoker, ctx, s.workload)
            workloads.warm_up(ctx)
            for step in s.faults:
                workloads.check(ctx)
                self._enter(name, Phase.FAULTS, step.name)
                if step.after:
                    self._pause(step.after, f"{step.after:g}s before {step.name}")
                attempted += 1
                measured[step.name] = self._inject(ctx, step, undos)
                res.faults_injected += 1
            self._enter(name, Phase.RECOVERY)
            watch.wait(self.probes, ctx, s)
            workloads.stop(self.invoker, ctx)
            ctx.recovery = watch.measure(ctx, s, measured)
            self._enter(name, Phase.CHECKS)
            res.checks = verify.run_checks(self.invoker, ctx, s)
            self._enter(name, Phase.STEADY_STATE_AFTER)
            # observed, not awaited: a failover may leave a replica missing until rollback
            after_ok = self.probes.hold(ctx, s.steady_state, Event.STEADY_STATE_AFTER)
            res.outcome, res.reason = judge(Observed(
                res.faults_injected, res.checks, ctx.recovery, s.recovery.timeout,
                s.recovery.expect_outage, [], after_ok))
        except BaselineNotMet as exc:
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
            self.journal.append(Event.ERROR, scenario=name, error=res.reason)
        except Exception as exc:
            res.outcome, res.reason = Outcome.ERROR, error_text(exc)
            self.journal.append(Event.ERROR, scenario=name, error=res.reason,
                                traceback=traceback.format_exc(limit=8))
        finally:
            self._arm(0)  # rollback is not bound by the deadline: it must finish
            # From here to the scenario's end a signal (a second Ctrl-C, say) is deferred:
            # raised here it would skip the undos.
            self._rolling_back = True
            try:
                workloads.stop(self.invoker, ctx)
                restored = self._rollback(ctx, s, undos, attempted > 0)
                res.undo_failures = list(undos.failures)
                self._settle_outcome(res, restored)
                for client in ctx.workloads.values():
                    _quietly(client.close)
                res.ended = time.monotonic()
                rec = ctx.recovery or ScenarioRecovery(None, None, False)
                res.measurements = scenario_measurements(rec, res.checks,
                                                         res.ended - res.started)
                self.journal.append(
                    Event.SCENARIO_END, scenario=name, outcome=res.outcome.value,
                    reason=res.reason, measurements=res.measurements,
                    seconds=res.ended - res.started, undo_failures=res.undo_failures,
                    recovery_detail=rec.per_workload)
                self.observer.phase(name, Phase.DONE, res.outcome.value)
            finally:
                self._rolling_back = False
                if self._interrupt_pending:
                    self.interrupted = True
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
    def _pause(self, seconds: float, what: str) -> None:
        """A scheduled delay between steps (part of the scenario, not a wait for state)."""
        self.journal.append(Event.DELAY, seconds=seconds, what=what)
        time.sleep(seconds)

    def _inject(self, ctx: RunContext, step: ActionStep, undos: Undos
                ) -> dict[str, Measurement]:
        """A fault or action step; the measurements it returned."""
        call = self.invoker.step(ctx, step.name, step.args, undos.sink(ctx, step.name))
        return dict(call.result().get("measurements", {}))

    def _rollback(self, ctx: RunContext, s: Scenario, undos: Undos, injected: bool) -> bool:
        """Undo every fault (newest first), run the rollbacks, then wait for steady state.
        A failed undo stays pending in the journal and fails the scenario."""
        if not (injected or undos.any_fault):
            undos.settle_moot(ctx)
            return True
        self.observer.phase(ctx.scenario, Phase.ROLLBACK)
        undos.run_all(ctx)
        self._undo_failed = self._undo_failed or bool(undos.failures)
        try:
            self.probes.await_steady(ctx, s.steady_state, Event.STEADY_STATE_RESTORED,
                                     RESTORE_TIMEOUT)
            return True
        except BaselineNotMet:
            return False


def _quietly(fn: Callable[[], Any]) -> None:
    with suppress(Exception):  # closing a client of a dead server may fail
        fn()

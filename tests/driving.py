"""Driving a workload client by hand in the per-service integration tests: the engine's job
(one thread at a rate, every op recorded in the History), without the engine."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from drillrunner.core.verdicts import CheckResult
from drillrunner.core.waiting import poll_until
from drillrunner.engine.checks import no_acknowledged_write_lost, recovered_within_slo
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import FaultEvent, History, OpStatus
from drillrunner.engine.outcome import ScenarioRecovery, from_workloads
from drillrunner.engine.recovery import lasting_success
from drillrunner.engine.schedule import WorkloadThread

STABLE = 0.3  # seconds of successes in a row that count as recovered (tests keep it short)


def make_ctx(target: Any, scenario: str = "test",
             slo: dict[str, Any] | None = None) -> RunContext:
    """A RunContext whose events land in stash["events"] and undos in stash["undos"]."""
    events: list[tuple[str, dict[str, Any]]] = []
    undos: list[tuple[str, dict[str, Any]]] = []
    ctx = RunContext(target=target, scenario=scenario, history=History(),
                     record=lambda event, **data: events.append((event, data)),
                     **({"slo": slo} if slo is not None else {}),
                     _undo_sink=lambda action, args: undos.append((action, args)))
    ctx.stash["undos"] = undos
    ctx.stash["events"] = events
    return ctx


def assert_outage_observed(history: History, workload: str) -> int:
    """The fault had an effect the client saw: at least one operation failed or did not
    complete in time (a stall ends as unknown). Returns how many; a fault nobody noticed
    cannot show that a recovery happened."""
    ops = history.ops(workload)
    hit = [o for o in ops if o.status is not OpStatus.OK]
    assert hit, (f"no {workload} operation failed or stalled among {len(ops)}: the fault "
                 "was not observed by the client")
    return len(hit)


def measure_recovery(ctx: RunContext, stable: float = STABLE) -> ScenarioRecovery:
    """Set ctx.recovery from the history as the engine does before its checks run (the
    RTO from every workload, counted from the first fault): recovered_within_slo judges it."""
    faults = ctx.history.faults()
    assert faults, "no fault was injected"
    t_fault = faults[0].invoked
    ctx.recovery = from_workloads(ctx.history, ctx.history.workloads(), t_fault, stable,
                                  time.monotonic() - t_fault)
    return ctx.recovery


def judge_recovery(ctx: RunContext, workload: str, **limits: Any) -> CheckResult:
    """After the faults, as the engine does: the outage the client saw, the recovery
    measured, then recovered_within_slo (with `limits`: rto, from_fault) judged on it."""
    assert_outage_observed(ctx.history, workload)
    measure_recovery(ctx)
    return recovered_within_slo(ctx, **limits)


def judge_writes(ctx: RunContext, workload: str,
                 **limits: Any) -> tuple[CheckResult, CheckResult]:
    """judge_recovery, then no_acknowledged_write_lost: the two verdicts on a write
    workload's run."""
    return judge_recovery(ctx, workload, **limits), no_acknowledged_write_lost(ctx)


def inject(ctx: RunContext, name: str, fn: Any, **args: Any) -> Any:
    """Call a registered fault and record it in the History, as the engine does."""
    invoked = time.monotonic()
    result = fn(ctx, **args)
    event = FaultEvent(name, invoked, time.monotonic(), True)
    ctx.history.add_step(event)
    ctx.history.add_fault(event)
    return result


class Driver:
    """Drives `client.write(seq)` with the engine's own WorkloadThread at `rate`, every op
    recorded in the History; a subclass names its workload and rate. Used as a context
    manager: entering waits for `start_ok` successes, leaving stops the thread."""

    workload: ClassVar[str]
    rate: ClassVar[float]
    start_ok: ClassVar[int] = 20
    start_timeout: ClassVar[float] = 10.0
    lasting: ClassVar[int] = 20  # successes in a row that count as recovered
    noun: ClassVar[str] = "acknowledged writes"

    def __init__(self, ctx: RunContext, client: Any) -> None:
        self.ctx, self.client = ctx, client
        self.thread = WorkloadThread(self.workload, client, self.rate, ctx.history,
                                     ctx.record)
        ctx.workloads[self.workload] = client

    def __enter__(self) -> Any:
        self.thread.start()
        self.wait_count(True, self.start_ok, timeout=self.start_timeout)
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.stop(30)

    def count(self, ok: bool) -> int:
        return sum(1 for o in self.ctx.history.ops(self.workload)
                   if (o.status is OpStatus.OK) == ok)

    def ok_count(self) -> int:
        return self.count(True)

    def wait_count(self, ok: bool, more: int, timeout: float = 20.0) -> None:
        goal = self.count(ok) + more
        poll_until(lambda: self.count(ok) >= goal, timeout=timeout,
                   what=f"{more} more {self.noun if ok else 'failed or unknown ops'}")

    def wait_ok(self, more: int, timeout: float = 10.0) -> None:
        self.wait_count(True, more, timeout)

    def wait_failed(self, more: int, timeout: float = 10.0) -> None:
        self.wait_count(False, more, timeout)

    def wait_recovered(self, since: float, timeout: float = 60.0) -> None:
        poll_until(lambda: lasting_success(self.ctx.history.ops(self.workload), since,
                                           self.lasting, STABLE),
                   timeout=timeout, what="the workload to recover")

    def survive_member_loss(self, name: str, fault: Any, member: str, undo: str,
                            **args: Any) -> Any:
        """Inject the first fault, one that must take down `member` alone and journal the
        `undo` action on it; then wait for the workload to recover."""
        result = inject(self.ctx, name, fault, **args)
        assert result.members == [member]
        assert self.ctx.stash["undos"] == [(undo, {"member": member})]
        self.wait_recovered(self.ctx.history.faults()[0].returned)
        return result

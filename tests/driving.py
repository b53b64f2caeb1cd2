"""Driving a workload client by hand in the per-service integration tests: the engine's job
(one thread at a rate, every op recorded in the History), without the engine."""

from __future__ import annotations

import threading
import time
from typing import Any, ClassVar

from drillrunner.engine.context import RunContext
from drillrunner.engine.history import FaultEvent, History, Op, OpStatus, OpUnknown
from drillrunner.engine.recovery import lasting_success
from drillrunner.waiting import poll_until


def make_ctx(target: Any, scenario: str) -> RunContext:
    """A RunContext whose events land in stash["events"] and undos in stash["undos"]."""
    events: list[tuple[str, dict[str, Any]]] = []
    undos: list[tuple[str, dict[str, Any]]] = []
    ctx = RunContext(target=target, scenario=scenario, history=History(),
                     record=lambda event, **data: events.append((event, data)),
                     _undo_sink=lambda action, args: undos.append((action, args)))
    ctx.stash["undos"] = undos
    ctx.stash["events"] = events
    return ctx


def inject(ctx: RunContext, name: str, fn: Any, **args: Any) -> Any:
    """Call a registered fault and record it in the History, as the engine does."""
    invoked = time.monotonic()
    result = fn(ctx, **args)
    ctx.history.add_fault(FaultEvent(name, invoked, time.monotonic(), True))
    return result


class Driver:
    """Drives `client.write(seq)` from one thread at `rate`, recording every op; a
    subclass names its workload and rate. Used as a context manager: entering waits for
    `start_ok` successes, leaving stops the thread."""

    workload: ClassVar[str]
    rate: ClassVar[float]
    start_ok: ClassVar[int] = 20
    start_timeout: ClassVar[float] = 10.0
    lasting: ClassVar[int] = 20  # successes in a row that count as recovered
    noun: ClassVar[str] = "acknowledged writes"

    def __init__(self, ctx: RunContext, client: Any) -> None:
        self.ctx, self.client = ctx, client
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        ctx.workloads[self.workload] = client

    def _run(self) -> None:
        seq = 0
        while not self.stop.is_set():
            seq += 1
            invoked = time.monotonic()
            status, error = OpStatus.OK, None
            try:
                self.client.write(seq)
            except OpUnknown as exc:
                status, error = OpStatus.UNKNOWN, str(exc)
            except Exception as exc:
                status, error = OpStatus.FAIL, str(exc)
            completed = time.monotonic()
            self.ctx.history.add_op(Op(self.workload, seq, invoked, completed, status, error))
            self.stop.wait(max(0.0, 1.0 / self.rate - (completed - invoked)))

    def __enter__(self) -> Any:
        self.thread.start()
        self.wait_count(True, self.start_ok, timeout=self.start_timeout)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(15)

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
                                           self.lasting, 0.3),
                   timeout=timeout, what="the workload to recover")

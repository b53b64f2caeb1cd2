"""Runs a workload client at a fixed rate in a thread and records every operation."""

from __future__ import annotations

import threading
import time
from typing import Any

from drillrunner.engine.history import History, Op, OpStatus, OpUnknown, WorkloadClient
from drillrunner.evidence.events import Event


class WorkloadThread:
    """Issues sequence-numbered operations at `rate` per second until stopped.

    Operations are scheduled on a fixed grid; one that runs late is followed at once by the
    next, so the gap between operations, and so the RTO error bar, stays near 1/rate.
    """

    def __init__(
        self, name: str, client: WorkloadClient, rate: float, history: History,
        record: Any,
    ) -> None:
        self.name = name
        self.client = client
        self.interval = 1.0 / rate
        self.history = history
        self.record = record
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"workload-{name}", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        seq = 0
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                seq += 1
                invoked = time.monotonic()
                status, error = OpStatus.OK, None
                try:
                    self.client.write(seq)
                except OpUnknown as exc:
                    status, error = OpStatus.UNKNOWN, str(exc)[:200]
                except Exception as exc:
                    status, error = OpStatus.FAIL, f"{type(exc).__name__}: {exc}"[:200]
                op = Op(self.name, seq, invoked, time.monotonic(), status, error)
                self.history.add_op(op)
                self.record(Event.OP, workload=op.workload, op_seq=op.seq, invoked=op.invoked,
                            completed=op.completed, status=op.status.value, error=op.error)
                next_at = max(next_at + self.interval, time.monotonic() - self.interval)
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as exc:
            self.error = exc

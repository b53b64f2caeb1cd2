"""The drill's history: every workload operation and every fault, on the monotonic clock.

Following Jepsen, an operation is invoked and then completes ok, fail (it certainly did not
take effect) or unknown (it may have: a timeout or a broken connection mid-commit).
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from drillrunner.core.verdicts import OpStatus as OpStatus  # where the history is used


@dataclass(frozen=True)
class Op:
    workload: str
    seq: int
    invoked: float
    completed: float
    status: OpStatus
    error: str | None = None


@dataclass(frozen=True)
class FaultEvent:
    name: str
    invoked: float
    returned: float
    ok: bool


class OpUnknown(Exception):
    """Raised by a workload when an operation's effect is indeterminate."""


class WorkloadClient(Protocol):
    """What a service's workload provides; the engine schedules and records the calls."""

    def write(self, seq: int) -> None:
        """Perform operation `seq`; return when acknowledged. Raise OpUnknown when the
        outcome is indeterminate, any other exception when it certainly failed."""

    def read_back(self, seqs: Collection[int]) -> set[int]:
        """Which of `seqs` the store holds now (read from the current primary)."""

    def close(self) -> None: ...


class History:
    """Thread-safe, append-only record of operations and faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ops: list[Op] = []
        self._faults: list[FaultEvent] = []
        self._steps: list[FaultEvent] = []

    def add_op(self, op: Op) -> None:
        with self._lock:
            self._ops.append(op)

    def add_fault(self, event: FaultEvent) -> None:
        with self._lock:
            self._faults.append(event)

    def ops(self, workload: str | None = None) -> list[Op]:
        with self._lock:
            ops = list(self._ops)
        return [o for o in ops if workload is None or o.workload == workload]

    def faults(self) -> list[FaultEvent]:
        with self._lock:
            return list(self._faults)

    def add_step(self, event: FaultEvent) -> None:
        """Every fault or action step of the scenario, for checks that bound a window by
        an action (a restart, say), not only by a fault."""
        with self._lock:
            self._steps.append(event)

    def steps(self) -> list[FaultEvent]:
        with self._lock:
            return list(self._steps)

    def workloads(self) -> list[str]:
        return sorted({o.workload for o in self.ops()})

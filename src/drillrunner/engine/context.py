"""What every probe, fault, workload, check and action receives as its first argument."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from drillrunner.engine.history import History, WorkloadClient
from drillrunner.engine.outcome import ScenarioRecovery
from drillrunner.engine.schedule import WorkloadThread
from drillrunner.targets.base import Target

Recorder = Callable[..., object]
UndoSink = Callable[[str, dict[str, Any]], None]  # (action, args): journal an undo intent


@dataclass
class RunContext:
    """Per-scenario state. `stash` passes values between steps (a backup's path, a restore
    target time); `workloads` holds the workload clients by name and `threads` the running
    workloads, whether the scenario's `workload:` or a step started them: the engine stops
    every one before the checks and judges the recovery on all of them. `recovery` is the
    scenario's recovery as the engine measured it, set before the checks run."""

    target: Target
    scenario: str
    history: History
    record: Recorder  # record(event, **data): journal an observation
    stop: threading.Event = field(default_factory=threading.Event)
    stash: dict[str, Any] = field(default_factory=dict)
    workloads: dict[str, WorkloadClient] = field(default_factory=dict)
    slo: dict[str, Any] = field(default_factory=dict)
    threads: list[WorkloadThread] = field(default_factory=list)
    recovery: ScenarioRecovery | None = None
    _undo_sink: UndoSink | None = None

    def will_undo(self, action: str, **args: Any) -> None:
        """Journal (and fsync) the undo of the fault about to be injected, before it acts."""
        if self._undo_sink is None:
            raise RuntimeError("will_undo is only available while a fault runs")
        self._undo_sink(action, args)

    @contextmanager
    def undos_to(self, sink: UndoSink) -> Iterator[None]:
        """While a fault runs, what it declares with will_undo goes to `sink`."""
        self._undo_sink = sink
        try:
            yield
        finally:
            self._undo_sink = None

    def start_workload(self, name: str, client: WorkloadClient, rate: float) -> WorkloadThread:
        """Run `client` at `rate` in the background into the history, as a workload."""
        thread = WorkloadThread(name, client, rate, self.history, self.record)
        self.workloads[name] = client
        self.threads.append(thread)
        thread.start()
        return thread

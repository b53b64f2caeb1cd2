"""Every call of a catalog action: bind the scenario's arguments, call, and journal the call
in the one shape its kind of step has.

Probes, workloads and checks are journaled by the phase that runs them (a probe's event says
whether it held); fault and action steps as `<kind>-invoke` then `<kind>-return`; undos and
rollback steps as `<kind>-start` then `<kind>-done` or `<kind>-failed`, by the run and by
`drill recover` alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from drillrunner.core.actions import ActionKind, ActionSpec, Catalog
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext, UndoSink
from drillrunner.engine.history import FaultEvent
from drillrunner.evidence.events import ROLLBACK_EVENTS, UNDO_EVENTS, Event
from drillrunner.evidence.journal import Journal

_STEP_EVENTS = {ActionKind.FAULT: (Event.FAULT_INVOKE, Event.FAULT_RETURN),
                ActionKind.ACTION: (Event.ACTION_INVOKE, Event.ACTION_RETURN)}


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Call:
    """One call: its value, or the exception it raised."""

    name: str
    value: Any = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def result(self) -> dict[str, Any]:
        """What the journal keeps of the value: a FaultResult in full, else nothing."""
        return self.value.model_dump(mode="json") if isinstance(self.value, FaultResult) else {}

    def summary(self) -> str:
        if self.error is not None:
            return "failed: " + error_text(self.error)
        return "done: " + (self.value.summary if isinstance(self.value, FaultResult) else "done")


class Invoker:
    def __init__(self, catalog: Catalog, journal: Journal) -> None:
        self.catalog = catalog
        self.journal = journal

    def spec(self, name: str) -> ActionSpec:
        spec = self.catalog.get(name)
        if spec is None:
            raise RuntimeError(f"unknown action {name}")
        return spec

    def call(self, ctx: RunContext, name: str, args: dict[str, Any]) -> Any:
        """Bind and call; what it raises propagates."""
        spec = self.spec(name)
        return spec.call(ctx, spec.bind(args))

    def attempt(self, ctx: RunContext, name: str, args: dict[str, Any]) -> Call:
        """Bind and call; an Exception is the call's result (a BaseException, such as an
        interrupt or the scenario's deadline, still propagates)."""
        try:
            return Call(name, self.call(ctx, name, args))
        except Exception as exc:
            return Call(name, error=exc)

    def step(self, ctx: RunContext, name: str, args: dict[str, Any], sink: UndoSink) -> Call:
        """A fault or action step. The undos a fault declares go to `sink` while it runs,
        and its timing to the history whether or not it raised; what it raises propagates
        (the scenario journals it as its error) after the timing is kept."""
        spec = self.spec(name)
        invoke, returned_event = _STEP_EVENTS[spec.kind]
        bound = spec.bind(args)
        invoked = time.monotonic()
        self._append(ctx, invoke, name=name, args=args, t=invoked)
        ok = False
        try:
            with ctx.undos_to(sink):
                value = spec.call(ctx, bound)
            ok = True
        finally:
            returned = time.monotonic()
            event = FaultEvent(name, invoked, returned, ok)
            ctx.history.add_step(event)
            if spec.kind is ActionKind.FAULT:
                ctx.history.add_fault(event)
        call = Call(name, value)
        self._append(ctx, returned_event, name=name, t=returned, seconds=returned - invoked,
                     result=call.result())
        return call

    def undo(self, ctx: RunContext, action: str, args: dict[str, Any], undo_id: int, *,
             rollback: bool = False, **extra: Any) -> Call:
        """An undo (or a rollback step): journaled when it starts and when it is done or
        failed, with `extra` fields on each; a failure is the call's result."""
        start, done, failed = ROLLBACK_EVENTS if rollback else UNDO_EVENTS
        self._append(ctx, start, undo_id=undo_id, action=action, args=args, **extra)
        call = self.attempt(ctx, action, args)
        if call.error is not None:
            self._append(ctx, failed, undo_id=undo_id, action=action,
                         error=error_text(call.error), **extra)
        else:
            self._append(ctx, done, undo_id=undo_id, action=action, result=call.result(),
                         **extra)
        return call

    def _append(self, ctx: RunContext, event: Event, **data: Any) -> None:
        self.journal.append(event, scenario=ctx.scenario, **data)


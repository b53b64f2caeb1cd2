"""The undos a scenario owes: each journaled as an intent before what it undoes acts, so
that `drill recover` can replay it if the run dies, and run newest first at rollback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from drillrunner.engine.context import RunContext, UndoSink
from drillrunner.engine.invoke import Invoker
from drillrunner.evidence.events import Event
from drillrunner.model.scenario import ActionStep


@dataclass
class Undo:
    action: str
    args: dict[str, Any]
    id: int
    rollback: bool = False  # a scenario's rollback step, journaled before the faults


class Undos:
    def __init__(self, invoker: Invoker) -> None:
        self.invoker = invoker
        self.items: list[Undo] = []
        self.failures: list[str] = []  # actions whose undo failed (still pending)

    @property
    def any_fault(self) -> bool:
        return any(not u.rollback for u in self.items)

    def intend_rollbacks(self, ctx: RunContext, steps: list[ActionStep]) -> None:
        """The scenario's rollbacks are journaled as pending undos before anything is
        injected (the oldest, so replayed last), so `drill recover` runs them too."""
        for i, step in enumerate(steps):
            self._intend(ctx, Undo(step.name, step.args, i, rollback=True), None)

    def sink(self, ctx: RunContext, fault: str) -> UndoSink:
        """Where the fault `fault` declares its undos (ctx.will_undo)."""

        def declare(action: str, args: dict[str, Any]) -> None:
            if self.invoker.catalog.get(action) is None:
                raise RuntimeError(f"{fault} declared an unknown undo {action}")
            self._intend(ctx, Undo(action, args, len(self.items)), fault)

        return declare

    def _intend(self, ctx: RunContext, undo: Undo, fault: str | None) -> None:
        extra = {"rollback": True} if undo.rollback else {}
        self.invoker.journal.append(Event.UNDO_INTENT, scenario=ctx.scenario, undo_id=undo.id,
                                    fault=fault, action=undo.action, args=undo.args, **extra)
        self.items.append(undo)

    def settle_moot(self, ctx: RunContext) -> None:
        """Nothing was injected: the journaled rollbacks are not needed."""
        for undo in self.items:
            self.invoker.journal.append(Event.UNDO_DONE, scenario=ctx.scenario,
                                        undo_id=undo.id, action=undo.action,
                                        result={"summary": "not needed"})

    def run_all(self, ctx: RunContext) -> None:
        """Every fault's undo, newest first, then the rollback steps in their order. A
        failed one is recorded in `failures` and the rest still run."""
        ordered = ([u for u in reversed(self.items) if not u.rollback]
                   + [u for u in self.items if u.rollback])
        for undo in ordered:
            call = self.invoker.undo(ctx, undo.action, undo.args, undo.id,
                                     rollback=undo.rollback)
            if not call.ok:
                self.failures.append(undo.action)

"""Replays the undos a run journaled but never completed (the runner died mid-drill)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drillrunner.core.actions import Catalog
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
from drillrunner.engine.invoke import Invoker
from drillrunner.evidence.events import UNDO_COMPLETED, Event
from drillrunner.evidence.journal import Journal, read


@dataclass(frozen=True)
class PendingUndo:
    scenario: str
    undo_id: int
    action: str
    args: dict[str, Any]


def pending_undos(journal: Path) -> list[PendingUndo]:
    """Undo intents without a completed undo, in the order they were journaled."""
    intents: dict[tuple[str, int], PendingUndo] = {}
    done: set[tuple[str, int]] = set()
    for ev in read(journal):
        key = (ev.get("scenario", ""), ev.get("undo_id", -1))
        if ev["event"] == Event.UNDO_INTENT:
            intents[key] = PendingUndo(key[0], key[1], ev["action"], ev.get("args", {}))
        elif ev["event"] in UNDO_COMPLETED:
            done.add(key)
    return [u for k, u in intents.items() if k not in done]


def replay(journal_path: Path, target: Any, catalog: Catalog) -> list[tuple[PendingUndo, str]]:
    """Run the pending undos newest first; each result is journaled. Idempotent: an undo
    that completed is journaled as done and is not run again.

    An undo that fails is tried again after the others, as long as a pass makes progress:
    some undos depend on an older one (a rematerialisation waits for a replica that an
    earlier-journaled undo resumes), which newest-first order alone cannot satisfy."""
    pending = pending_undos(journal_path)
    journal = Journal(journal_path)
    invoker = Invoker(catalog, journal)
    outcome: dict[tuple[str, int], str] = {}
    try:
        journal.append(Event.RECOVER_START, pending=len(pending))
        todo = list(reversed(pending))
        while todo:
            failed = [u for u in todo if not _run_undo(u, target, invoker, outcome)]
            if len(failed) == len(todo):
                break  # no progress: report what still fails
            todo = failed
        journal.append(Event.RECOVER_END,
                       failed=sum(r.startswith("failed") for r in outcome.values()))
    finally:
        journal.close()
    return [(u, outcome[(u.scenario, u.undo_id)]) for u in reversed(pending)]


def _run_undo(undo: PendingUndo, target: Any, invoker: Invoker,
              outcome: dict[tuple[str, int], str]) -> bool:
    """A rollback step's intent is replayed (and journaled) as an undo like any other."""
    journal = invoker.journal
    ctx = RunContext(target=target, scenario=undo.scenario, history=History(),
                     record=lambda event, **d: journal.append(event, **d))
    call = invoker.undo(ctx, undo.action, undo.args, undo.undo_id, recovering=True)
    outcome[(undo.scenario, undo.undo_id)] = call.summary()
    return call.ok

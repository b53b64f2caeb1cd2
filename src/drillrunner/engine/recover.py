"""Replays the undos a run journaled but never completed (the runner died mid-drill)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drillrunner.core.actions import Catalog
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
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
        if ev["event"] == "undo-intent":
            intents[key] = PendingUndo(key[0], key[1], ev["action"], ev.get("args", {}))
        elif ev["event"] in ("undo-done", "rollback-done"):
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
    outcome: dict[tuple[str, int], str] = {}
    try:
        journal.append("recover-start", pending=len(pending))
        todo = list(reversed(pending))
        while todo:
            failed = [u for u in todo if not _run_undo(u, target, catalog, journal, outcome)]
            if len(failed) == len(todo):
                break  # no progress: report what still fails
            todo = failed
        journal.append("recover-end",
                       failed=sum(r.startswith("failed") for r in outcome.values()))
    finally:
        journal.close()
    return [(u, outcome[(u.scenario, u.undo_id)]) for u in reversed(pending)]


def _run_undo(undo: PendingUndo, target: Any, catalog: Catalog, journal: Journal,
              outcome: dict[tuple[str, int], str]) -> bool:
    ctx = RunContext(target=target, scenario=undo.scenario, history=History(),
                     record=lambda event, **d: journal.append(event, **d))
    spec = catalog.get(undo.action)
    journal.append("undo-start", scenario=undo.scenario, undo_id=undo.undo_id,
                   action=undo.action, args=undo.args, recovering=True)
    key = (undo.scenario, undo.undo_id)
    try:
        if spec is None:
            raise RuntimeError(f"unknown action {undo.action}")
        result = spec.call(ctx, spec.bind(undo.args))
    except Exception as exc:
        journal.append("undo-failed", scenario=undo.scenario, undo_id=undo.undo_id,
                       action=undo.action, error=f"{type(exc).__name__}: {exc}",
                       recovering=True)
        outcome[key] = f"failed: {type(exc).__name__}: {exc}"
        return False
    summary = result.summary if isinstance(result, FaultResult) else "done"
    journal.append("undo-done", scenario=undo.scenario, undo_id=undo.undo_id,
                   action=undo.action, result={"summary": summary}, recovering=True)
    outcome[key] = "done: " + summary
    return True

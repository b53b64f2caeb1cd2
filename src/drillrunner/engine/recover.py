"""Replays the undos a run journaled but never completed (the runner died mid-drill)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drillrunner.engine.actions import Catalog
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
from drillrunner.engine.journal import Journal, read
from drillrunner.engine.verdicts import FaultResult


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
        elif ev["event"] == "undo-done":
            done.add(key)
    return [u for k, u in intents.items() if k not in done]


def replay(journal_path: Path, target: Any, catalog: Catalog) -> list[tuple[PendingUndo, str]]:
    """Run the pending undos newest first; each result is journaled. Idempotent: an undo
    that completed is journaled as done and is not run again."""
    pending = pending_undos(journal_path)
    journal = Journal(journal_path)
    results: list[tuple[PendingUndo, str]] = []
    try:
        journal.append("recover-start", pending=len(pending))
        for undo in reversed(pending):
            ctx = RunContext(target=target, scenario=undo.scenario, history=History(),
                             record=lambda event, **d: journal.append(event, **d))
            spec = catalog.get(undo.action)
            journal.append("undo-start", scenario=undo.scenario, undo_id=undo.undo_id,
                           action=undo.action, args=undo.args, recovering=True)
            try:
                if spec is None:
                    raise RuntimeError(f"unknown action {undo.action}")
                result = spec.call(ctx, spec.bind(undo.args))
                summary = result.summary if isinstance(result, FaultResult) else "done"
                journal.append("undo-done", scenario=undo.scenario, undo_id=undo.undo_id,
                               action=undo.action, result={"summary": summary},
                               recovering=True)
                results.append((undo, "done: " + summary))
            except Exception as exc:
                journal.append("undo-failed", scenario=undo.scenario, undo_id=undo.undo_id,
                               action=undo.action, error=f"{type(exc).__name__}: {exc}",
                               recovering=True)
                results.append((undo, f"failed: {type(exc).__name__}: {exc}"))
        journal.append("recover-end", failed=sum(r.startswith("failed") for _, r in results))
    finally:
        journal.close()
    return results

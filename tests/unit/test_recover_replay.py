"""`drill recover`'s replay of a dead run's undos (the order logic; real undos on real
servers are in tests/integration/test_recover.py)."""

from __future__ import annotations

from pathlib import Path

from drillrunner.core.actions import Catalog
from drillrunner.engine import checks
from drillrunner.engine.recover import pending_undos, replay
from drillrunner.evidence.journal import Journal, read
from tests.unit import fake_actions
from tests.unit.fake_actions import FakeTarget

CATALOG = Catalog.from_modules([checks, fake_actions])


def journal_with(path: Path, *actions: str) -> None:
    j = Journal(path)
    for i, name in enumerate(actions, 1):
        j.append("undo-intent", scenario="died", undo_id=i, action=name, args={})
    j.close()


def test_an_undo_that_needs_an_older_one_is_retried_after_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal_with(path, "fake.restart_replica", "fake.rematerialize")
    target = FakeTarget()
    results = replay(path, target, CATALOG)
    # newest first fails, the older one runs, then the newest again and succeeds
    assert target.log == ["rematerialize", "restart_replica", "rematerialize"]
    assert [r for _, r in results] == ["done: rematerialized", "done: replica up"]  # newest first
    assert pending_undos(path) == []
    events = [e["event"] for e in read(path)]
    assert events.count("undo-failed") == 1 and events.count("undo-done") == 2
    assert replay(path, target, CATALOG) == []  # idempotent: nothing left


def test_an_undo_that_keeps_failing_is_reported_once_no_pass_makes_progress(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal_with(path, "fake.rematerialize", "fake.no_such_undo")
    results = dict((u.action, r) for u, r in replay(path, FakeTarget(), CATALOG))
    assert results["fake.no_such_undo"].startswith("failed: RuntimeError: unknown action")
    assert results["fake.rematerialize"].startswith("failed: RuntimeError: no replica")
    assert len(pending_undos(path)) == 2  # still pending: the next recover tries again


def test_a_replayed_undo_is_journaled_like_the_run_journals_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal_with(path, "fake.fix")
    replay(path, FakeTarget(), CATALOG)
    by_event = {e["event"]: e for e in read(path)}
    start, done = by_event["undo-start"], by_event["undo-done"]
    assert {k: start[k] for k in ("scenario", "undo_id", "action", "args", "recovering")} == {
        "scenario": "died", "undo_id": 1, "action": "fake.fix", "args": {}, "recovering": True}
    assert done["result"]["summary"] and done["recovering"] is True

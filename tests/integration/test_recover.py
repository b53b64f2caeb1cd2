"""kill -9 of the runner right after a fault: the next drill refuses to start, and
`drill recover` replays the journaled undo and leaves the stack healthy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drillrunner.cli import main
from drillrunner.waiting import poll_until
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration


def _journal_has(path: Path, event: str) -> bool:
    try:
        return any(json.loads(line)["event"] == event for line in path.read_text().splitlines()
                   if line.strip())
    except (OSError, ValueError):
        return False


@pytest.mark.parametrize(("scenario", "service"), [
    ("redis-sentinel-failover", "redis"),
    ("timescaledb-primary-failover", "timescaledb"),
])
def test_kill_runner_after_fault_then_recover(drill_stack: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              scenario: str, service: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from drillrunner.cli import main; main()", "run", scenario,
         "--out", str(tmp_path)],
        cwd=ROOT, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        journal = poll_until(lambda: next(tmp_path.glob("*/journal.jsonl"), None),
                             timeout=60, what="the run's journal")
        poll_until(lambda: _journal_has(journal, "fault-return"), timeout=90, interval=0.01,
                   what="the first fault")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert not _journal_has(journal, "undo-done")
    capsys.readouterr()
    assert main(["run", scenario, "--out", str(tmp_path / "again")]) == 3
    assert "drill recover" in capsys.readouterr().err
    assert main(["recover"]) == 0
    assert _journal_has(journal, "undo-done")
    assert main(["recover"]) == 0  # idempotent: nothing left to do
    from drillrunner.engine.actions import Catalog
    from drillrunner.engine.context import RunContext
    from drillrunner.engine.history import History
    from drillrunner.targets.local.target import LocalTarget

    target = LocalTarget(drill_stack)
    catalog = Catalog.load()
    ready = catalog.get(f"{service}.ready")
    assert ready is not None
    ctx = RunContext(target=target, scenario="check", history=History(),
                     record=lambda *a, **k: None)
    started = time.monotonic()
    poll_until(lambda: ready.call(ctx, ready.bind({})), timeout=60, interval=0.5,
               what=f"{service} ready after recover")
    assert time.monotonic() - started < 60
    for member in target.members(service):
        assert target.is_running(member), member.name

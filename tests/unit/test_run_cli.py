"""`drill run` end to end on the fake in-process service: exit codes, the lock after a
failed undo, the run-start facts the reports need."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drillrunner.cli import main
from drillrunner.core.actions import Catalog
from drillrunner.engine import checks
from drillrunner.evidence.journal import read
from tests.unit import fake_actions
from tests.unit.fake_actions import FakeTarget

SCENARIO = """\
apiVersion: drill/v1
kind: Scenario
metadata: {{name: {name}, title: Fake, claims: [C15-dr-drills]}}
slo: {{rto: 5s}}
steady_state:
  - probe: fake.ready
workload:
  - fake.writes: {{rate: 100/s}}
faults:
  - {fault}
recovery: {{timeout: 5s, stable: 500ms}}
verify:
  - check: no_acknowledged_write_lost
"""


class LockedTarget(FakeTarget):
    def __init__(self, state: Path) -> None:
        super().__init__()
        self.state = state

    def describe(self) -> dict[str, str]:
        return {"target": "fake"}

    def deployments(self) -> list[object]:
        return []


@pytest.fixture
def fake_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LockedTarget:
    catalog = Catalog.from_modules([checks, fake_actions])
    target = LockedTarget(tmp_path / "state")
    monkeypatch.setattr(Catalog, "load", classmethod(lambda cls, *a: catalog))
    monkeypatch.setattr("drillrunner.stack.select.open_target",
                        lambda *a, **k: target)
    monkeypatch.setattr("drillrunner.core.paths.state_dir", lambda: target.state)
    monkeypatch.setenv("DRILL_SIGNING_KEY", str(tmp_path / "key"))
    return target


def _scenario(tmp_path: Path, name: str, fault: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SCENARIO.format(name=name, fault=fault))
    return str(path)


def _run(tmp_path: Path, *paths: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    out = tmp_path / "out"
    code = main(["run", *paths, "--out", str(out), "--no-audit"])
    bundle = max(out.iterdir())
    return code, json.loads((bundle / "summary.json").read_text())


def test_a_failed_undo_fails_the_run_keeps_the_lock_and_stops(
        tmp_path: Path, fake_run: LockedTarget) -> None:
    bad = _scenario(tmp_path, "bad-undo", "fake.break_undo: {}")
    good = _scenario(tmp_path, "good", "fake.break_it: {}")
    code, summary = _run(tmp_path, bad, good)
    assert code == 1
    assert [s["name"] for s in summary["scenarios"]] == ["bad-undo"]  # the run stopped
    assert summary["scenarios"][0]["outcome"] == "failed"
    lock = fake_run.state / "drill.lock"
    assert lock.exists()  # drill recover must replay the pending undo first
    held = json.loads(lock.read_text())
    events = [e["event"] for e in read(Path(held["journal"]))]
    assert "scenarios-skipped" in events and "undo-failed" in events
    assert main(["run", good, "--out", str(tmp_path / "again"), "--no-audit"]) == 3
    assert lock.exists()


def test_failed_beats_error_in_the_exit_code(tmp_path: Path, fake_run: LockedTarget) -> None:
    lost = _scenario(tmp_path, "loses", "fake.break_it: {lose_writes: true}")
    crash = _scenario(tmp_path, "crashes", "fake.crash_after_intent: {}")
    code, summary = _run(tmp_path, lost, crash)
    assert [s["outcome"] for s in summary["scenarios"]] == ["failed", "error"]
    assert summary["outcome"] == "failed" and code == 1


def test_a_fault_without_effect_exits_3(tmp_path: Path, fake_run: LockedTarget) -> None:
    code, summary = _run(tmp_path, _scenario(tmp_path, "noop", "fake.no_effect: {}"))
    assert summary["scenarios"][0]["outcome"] == "inconclusive" and code == 3
    assert not (fake_run.state / "drill.lock").exists()


def test_run_start_carries_what_the_reports_need(tmp_path: Path,
                                                 fake_run: LockedTarget) -> None:
    _run(tmp_path, _scenario(tmp_path, "ok", "fake.break_it: {}"))
    journal = next((tmp_path / "out").glob("*/journal.jsonl"))
    start = next(e for e in read(journal) if e["event"] == "run-start")
    assert "C01-ha-probes" in start["claim_citations"]  # the project's whole library
    assert start["audit_manifests"] == []
    assert start["signing"]["fingerprint"].startswith("SHA256:")
    end = next(e for e in read(journal) if e["event"] == "run-end")
    assert end["outcome"] == "passed" and end["exit_code"] == 0


def test_recover_replays_the_failed_undo_and_signs_the_bundle_again(
        tmp_path: Path, fake_run: LockedTarget) -> None:
    code, _ = _run(tmp_path, _scenario(tmp_path, "bad-undo", "fake.break_undo: {}"))
    assert code == 1
    bundle = max((tmp_path / "out").iterdir())
    assert main(["verify", str(bundle)]) == 0
    fake_run.repaired = True  # type: ignore[attr-defined]
    assert main(["recover"]) == 0
    assert not (fake_run.state / "drill.lock").exists()
    assert fake_run.log[-1] == "fix"
    events = [e["event"] for e in read(bundle / "journal.jsonl")]
    assert events[-1] == "recover-end"
    assert main(["verify", str(bundle)]) == 0  # the journal grew; the bundle was re-signed

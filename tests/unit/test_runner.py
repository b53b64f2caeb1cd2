from pathlib import Path

import pytest

from drillrunner.engine import checks
from drillrunner.engine.actions import Catalog
from drillrunner.engine.journal import Journal, read
from drillrunner.engine.runner import Phase, Runner
from drillrunner.engine.verdicts import Outcome, Verdict
from drillrunner.model.loader import check_actions, load
from tests.unit import fake_actions
from tests.unit.fake_actions import FakeTarget

CATALOG = Catalog.from_modules([checks, fake_actions])

SCENARIO = """\
apiVersion: drill/v1
kind: Scenario
metadata: {{name: fake, title: Fake outage, claims: [C15-dr-drills]}}
slo: {{rto: 5s}}
steady_state:
  - probe: fake.ready
workload:
  - fake.writes: {{rate: 100/s}}
faults:
{faults}
recovery: {{timeout: 5s, settle: 200ms}}
verify:
{verify}
rollback:
  - fake.note: {{text: rollback}}
"""
DEFAULT_VERIFY = "  - check: recovered_within_slo\n  - check: no_acknowledged_write_lost"


class Phases:
    def __init__(self) -> None:
        self.seen: list[Phase] = []

    def phase(self, scenario: str, phase: Phase, detail: str = "") -> None:
        self.seen.append(phase)


def run(tmp_path: Path, faults: str, verify: str = DEFAULT_VERIFY, target: FakeTarget | None = None,
        dry_run: bool = False):  # type: ignore[no-untyped-def]
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(faults=faults, verify=verify))
    doc, problems = load(path)
    assert doc is not None and not problems and not check_actions(doc, CATALOG)
    target = target or FakeTarget()
    journal = Journal(tmp_path / "journal.jsonl")
    phases = Phases()
    runner = Runner(target, CATALOG, journal, phases, dry_run=dry_run)  # type: ignore[arg-type]
    with runner.signals():
        result = runner.run_scenario(doc)
    journal.close()
    return result, target, phases, [e["event"] for e in read(journal.path)]


def test_order_measurements_and_undo_before_rollback(tmp_path: Path) -> None:
    res, target, phases, events = run(tmp_path, "  - fake.break_it: {outage: 300ms}")
    assert res.outcome is Outcome.PASSED, res.reason
    assert target.log == ["break", "fix", "rollback"]
    assert phases.seen[:6] == [Phase.STEADY_STATE, Phase.WORKLOAD, Phase.FAULTS,
                               Phase.RECOVERY, Phase.CHECKS, Phase.STEADY_STATE_AFTER]
    assert events.index("undo-intent") < events.index("fault-return")
    m = res.measurements
    assert m["rto_seconds"] is not None and 0.25 < m["rto_seconds"] < 1.0
    assert m["rto_error_seconds"] is not None and m["rto_error_seconds"] < 0.05
    assert m["lost_acknowledged_writes"] == 0 and m["acknowledged_writes"] > 10


def test_lost_writes_fail_the_scenario(tmp_path: Path) -> None:
    res, *_ = run(tmp_path, "  - fake.break_it: {lose_writes: true}")
    assert res.outcome is Outcome.FAILED
    assert res.measurements["lost_acknowledged_writes"] > 0


def test_baseline_not_met_injects_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from drillrunner.engine import runner

    monkeypatch.setattr(runner, "STEADY_GRACE", 0.2)
    target = FakeTarget()
    target.up = False
    res, target, _, events = run(tmp_path, "  - fake.break_it: {}", target=target)
    assert res.outcome is Outcome.BASELINE_NOT_MET
    assert "fault-invoke" not in events and "break" not in target.log


def test_crashing_checker_is_unknown_never_pass(tmp_path: Path) -> None:
    res, *_ = run(tmp_path, "  - fake.break_it: {}", verify="  - check: fake.crashes")
    assert res.outcome is Outcome.INCONCLUSIVE
    assert res.checks[0][1].verdict is Verdict.UNKNOWN


def test_interrupt_still_undoes_the_fault(tmp_path: Path) -> None:
    res, target, _, events = run(tmp_path, "  - fake.interrupt_me: {}")
    assert res.outcome is Outcome.INTERRUPTED
    assert target.log == ["interrupt", "fix", "rollback"]
    assert "undo-done" in events


def test_dry_run_is_inconclusive_and_injects_nothing(tmp_path: Path) -> None:
    res, target, _, events = run(tmp_path, "  - fake.break_it: {}", dry_run=True)
    assert res.outcome is Outcome.INCONCLUSIVE
    assert target.log == [] and "fault-invoke" not in events


def test_exception_after_undo_journaled_still_undoes(tmp_path: Path) -> None:
    res, target, _, events = run(tmp_path, "  - fake.crash_after_intent: {}")
    assert res.outcome is Outcome.ERROR
    assert "fault bug after its undo was journaled" in res.reason
    assert target.log == ["half-broken", "fix", "rollback"]
    assert events.index("undo-intent") < events.index("error") < events.index("undo-done")


def test_scenario_deadline_ends_as_error_and_rolls_back(tmp_path: Path) -> None:
    import time

    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(faults="  - fake.hang: {seconds: 30s}",
                                    verify=DEFAULT_VERIFY) + "timeout: 1500ms\n")
    doc, problems = load(path)
    assert doc is not None and not problems
    target = FakeTarget()
    journal = Journal(tmp_path / "journal.jsonl")
    runner = Runner(target, CATALOG, journal, Phases())  # type: ignore[arg-type]
    started = time.monotonic()
    with runner.signals():
        res = runner.run_scenario(doc)
    journal.close()
    assert time.monotonic() - started < 10
    assert res.outcome is Outcome.ERROR
    assert "1.5s deadline passed during faults" in res.reason
    assert target.log == ["hang", "fix", "rollback"]  # not swallowed by `except Exception`
    events = [e["event"] for e in read(journal.path)]
    assert "undo-done" in events and "rollback-done" in events

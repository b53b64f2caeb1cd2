import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from drillrunner.core.actions import Catalog
from drillrunner.core.verdicts import Outcome, Verdict
from drillrunner.engine import checks, workloads
from drillrunner.engine.runner import Phase, Runner
from drillrunner.evidence.journal import Journal, read
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
recovery: {{timeout: 5s, stable: 500ms}}
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
        dry_run: bool = False, text: Callable[[str], str] = lambda t: t
        ):  # type: ignore[no-untyped-def]
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "s.yaml"
    path.write_text(text(SCENARIO.format(faults=faults, verify=verify)))
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


def test_a_second_interrupt_during_the_cleanup_is_deferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C while the workloads stop (before the undos) must not skip them."""
    real_stop = workloads.stop

    def stop_then_interrupt(*args: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        real_stop(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(workloads, "stop", stop_then_interrupt)
    res, target, _, events = run(tmp_path, "  - fake.interrupt_me: {}")
    assert res.outcome is Outcome.INTERRUPTED
    assert target.log == ["interrupt", "fix", "rollback"]
    assert "signal-deferred" in events and events[-1] == "scenario-end"


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


def test_a_fault_without_observable_effect_is_inconclusive_never_passed(tmp_path: Path) -> None:
    res, *_ = run(tmp_path, "  - fake.no_effect: {}")
    assert res.outcome is Outcome.INCONCLUSIVE
    assert "no observable effect" in res.reason
    assert res.measurements["outage_observed"] is False
    assert res.measurements["rto_seconds"] is None  # never an RTO of 0


def test_never_recovering_fails_even_without_an_slo_check(tmp_path: Path) -> None:
    res, *_ = run(tmp_path, "  - fake.break_it: {outage: 60s}",
                  verify="  - check: no_acknowledged_write_lost")
    assert res.outcome is Outcome.FAILED
    assert "never recovered" in res.reason
    assert res.measurements["rto_seconds"] is None
    assert res.measurements["rto_exceeds_seconds"] >= 4.5


def test_rto_beyond_the_slo_fails_when_no_check_lists_it(tmp_path: Path) -> None:
    res, *_ = run(tmp_path, "  - fake.break_it: {outage: 1200ms}",
                  verify="  - check: no_acknowledged_write_lost",
                  text=lambda t: t.replace("slo: {rto: 5s}", "slo: {rto: 1s}"))
    assert res.outcome is Outcome.FAILED
    names = [n for n, _ in res.checks]
    assert "recovered_within_slo" in names  # implied by slo.rto
    assert "exceeds the SLO of 1s" in res.reason


def test_a_failed_undo_fails_the_scenario_and_stays_pending(tmp_path: Path) -> None:
    from drillrunner.engine.recover import pending_undos

    res, _, _, events = run(tmp_path, "  - fake.break_undo: {}")
    assert res.outcome is Outcome.FAILED
    assert res.undo_failures == ["fake.fix_fails"]
    assert "undo failed" in res.reason
    assert "undo-failed" in events
    assert [u.action for u in pending_undos(tmp_path / "journal.jsonl")] == ["fake.fix_fails"]


def test_rollback_steps_are_journaled_before_the_faults_and_replayable(tmp_path: Path) -> None:
    from drillrunner.engine.recover import pending_undos

    res, _, _, events = run(tmp_path, "  - fake.break_it: {}")
    assert res.outcome is Outcome.PASSED, res.reason
    assert events.index("undo-intent") < events.index("fault-invoke")
    assert pending_undos(tmp_path / "journal.jsonl") == []


def test_an_unreadable_store_makes_the_loss_unknown_and_fails(tmp_path: Path) -> None:
    res, *_ = run(tmp_path, "  - fake.unreadable: {}")
    assert res.outcome is Outcome.FAILED
    assert res.measurements["lost_acknowledged_writes"] == "unknown"
    assert "OFFSET_NOT_AVAILABLE" in res.measurements["lost_unknown_reason"]


def test_a_fault_measured_rto_and_a_restore_that_never_finished(tmp_path: Path) -> None:
    def measured(t: str) -> str:
        return t.replace("recovery: {timeout: 5s, stable: 500ms}",
                         "recovery: {timeout: 5s, stable: 500ms, expect_outage: false, "
                         "rto_from: fake.measured_restore}")

    res, *_ = run(tmp_path, "  - fake.measured_restore: {seconds: 500ms}", text=measured)
    assert res.outcome is Outcome.PASSED, res.reason
    assert res.measurements["rto_seconds"] == 0.5
    assert res.measurements["rto_source"] == "fake.measured_restore"
    res, *_ = run(tmp_path / "b", "  - fake.measured_restore: {seconds: null}", text=measured)
    assert res.outcome is Outcome.FAILED and "never recovered" in res.reason


def test_each_check_keeps_its_own_measurements(tmp_path: Path) -> None:
    res, *_ = run(tmp_path, "  - fake.break_it: {lose_writes: true}")
    assert res.measurements["sources"]["lost_acknowledged_writes"] == \
        "no_acknowledged_write_lost"
    assert res.measurements["sources"]["rto_seconds"] == "engine"
    slo = dict(res.checks)["recovered_within_slo"]
    assert "lost_acknowledged_writes" not in slo.measurements


def test_the_journal_seq_counts_every_line(tmp_path: Path) -> None:
    run(tmp_path, "  - fake.break_it: {}")
    assert [e["seq"] for e in read(tmp_path / "journal.jsonl")] == list(
        range(sum(1 for _ in read(tmp_path / "journal.jsonl"))))
    ops = [e for e in read(tmp_path / "journal.jsonl") if e["event"] == "op"]
    assert ops and all("op_seq" in e for e in ops)

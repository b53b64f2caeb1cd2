"""Claim verdicts, evidence strength and coverage, from synthetic journals: what every report
format and `drill claims` say about a claim after a run."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from drillrunner.cli import main
from drillrunner.evidence.journal import Journal
from drillrunner.report.bundle import render_bundle
from drillrunner.report.claims import ClaimRow, ClaimVerdict, Strength, claim_rows
from drillrunner.report.view import load_run

ROOT = Path(__file__).resolve().parents[2]
C01, C02, C08, C15 = "C01-ha-probes", "C02-tls-ingress", "C08-backup-restore", "C15-dr-drills"
REGISTRY = [{"id": c, "text": c, "source": "review"} for c in (C01, C02, C08, C15)]
FAILOVERS = [f"failover-{i}" for i in range(8)]  # the library's 8 scenarios citing C01
CITATIONS = {C01: FAILOVERS, C08: ["pitr-restore"], C15: [*FAILOVERS, "pitr-restore"]}
SIGNING = {"algorithm": "ed25519", "fingerprint": "SHA256:q8Zb0uJ0Xx9YtP+fingerprintAAAA",
           "public_key": "AAAAC3NzaC1lZDI1NTE5AAAAIOo0eC0dGVzdA"}
MEASURED = {"rto_seconds": 2.381, "rto_error_seconds": 0.02, "rto_exceeds_seconds": None,
            "rto_source": "workload", "fault_to_recovery_seconds": 2.9, "outage_observed": True,
            "acknowledged_writes": 120, "lost_acknowledged_writes": 0, "scenario_seconds": 9.5,
            "sources": {"rto_seconds": "engine", "lost_acknowledged_writes":
                        "no_acknowledged_write_lost"}}


@dataclass
class Sc:
    """A scenario as the journal would record it."""

    name: str
    claims: list[str]
    outcome: str = "passed"
    reason: str = "every check passed"
    checks: list[tuple[str, str, dict[str, Any]]] = field(
        default_factory=lambda: [("recovered_within_slo", "PASS", {"rto_seconds": 2.381})])
    measurements: dict[str, Any] = field(default_factory=lambda: dict(MEASURED))
    undo_failures: list[str] = field(default_factory=list)
    injected: bool = True


def write_bundle(tmp_path: Path, scenarios: list[Sc], *, audits: list[dict[str, Any]] | None = None,
                 citations: dict[str, list[str]] | None = CITATIONS,
                 signing: dict[str, Any] | None = SIGNING, outcome: str = "passed",
                 exit_code: int = 0, **run_start: Any) -> Path:
    """A journal of the current shape, written through the engine's Journal."""
    bundle = tmp_path / "bundle"
    journal = Journal(bundle / "journal.jsonl")
    extra = {"claim_citations": citations} if citations is not None else {}
    journal.append("run-start", run_id="r1", target="local", pid=1,
                   scenarios=[s.name for s in scenarios], dry_run=False, environment={},
                   claims_registry=REGISTRY, signing=signing,
                   audit_manifests=["deploy/k8s"] if audits else [], **extra, **run_start)
    for audit in audits or []:
        journal.append("audit-rule", findings=[], **audit)
    for s in scenarios:
        journal.append("scenario-start", scenario=s.name, file=f"scenarios/{s.name}.yaml",
                       title=s.name, claims=s.claims, slo={"rto": 15.0}, dry_run=False)
        t = time.monotonic()
        for i, status in enumerate(("ok", "fail", "ok")):
            journal.append("op", scenario=s.name, workload="w", op_seq=i, invoked=t + i,
                           completed=t + i + 0.01, status=status, error=None)
        if s.injected:
            journal.append("fault-invoke", scenario=s.name, name="redis.kill_primary",
                           args={}, t=t + 0.5)
        for name, verdict, measurements in s.checks:
            journal.append("check", scenario=s.name, check=name, verdict=verdict,
                           summary=f"{name}: {verdict}", evidence={},
                           measurements=measurements)
        journal.append("scenario-end", scenario=s.name, outcome=s.outcome, reason=s.reason,
                       seconds=9.5, measurements=s.measurements,
                       undo_failures=s.undo_failures)
    journal.append("run-end", run_id="r1", outcome=outcome, exit_code=exit_code)
    journal.close()
    return bundle


def rows(bundle: Path) -> dict[str, ClaimRow]:
    return {r.id: r for r in claim_rows(load_run(bundle))}


# -- verdicts -----------------------------------------------------------------------------

def test_one_scenario_of_eight_is_partial_never_pass(tmp_path: Path) -> None:
    row = rows(write_bundle(tmp_path, [Sc("failover-0", [C01])]))[C01]
    assert row.verdict is ClaimVerdict.PARTIAL
    assert row.coverage == "1 of 8 scenarios"
    assert row.strength is Strength.EXERCISED and "local" in row.strength_detail
    assert "failover-7" in row.why  # names what did not run


def test_every_citing_scenario_passed_is_pass(tmp_path: Path) -> None:
    row = rows(write_bundle(tmp_path, [Sc(n, [C01]) for n in FAILOVERS]))[C01]
    assert row.verdict is ClaimVerdict.PASS and row.coverage == "8 of 8 scenarios"
    assert row.tested_by == FAILOVERS


@pytest.mark.parametrize("outcome",
                         ["inconclusive", "error", "interrupted", "aborted", "baseline-not-met"])
def test_a_scenario_without_verdict_makes_the_claim_inconclusive(tmp_path: Path,
                                                                  outcome: str) -> None:
    # Its checks all passed: the outcome alone must keep the claim from passing.
    scenarios = [Sc(n, [C01]) for n in FAILOVERS[1:]]
    scenarios.append(Sc(FAILOVERS[0], [C01], outcome=outcome, reason="could not observe"))
    row = rows(write_bundle(tmp_path, scenarios))[C01]
    assert row.verdict is ClaimVerdict.INCONCLUSIVE
    assert f"{FAILOVERS[0]} ({outcome}: could not observe)" in row.why


def test_a_failed_scenario_fails_the_claim_whatever_its_checks(tmp_path: Path) -> None:
    scenarios = [Sc(n, [C01]) for n in FAILOVERS[1:]]
    scenarios += [Sc(FAILOVERS[0], [C01], outcome="failed", reason="undo failed: fake.fix",
                     undo_failures=["fake.fix"]),
                  Sc("other", [C01], outcome="error", reason="crashed")]
    row = rows(write_bundle(tmp_path, scenarios))[C01]
    assert row.verdict is ClaimVerdict.FAIL and "undo failed" in row.why


def test_a_failed_check_fails_the_claim_even_when_the_scenario_errored(tmp_path: Path) -> None:
    bad = Sc("pitr-restore", [C08], outcome="error", reason="rollback failed",
             checks=[("pitr_restore_complete", "FAIL", {})])
    assert rows(write_bundle(tmp_path, [bad]))[C08].verdict is ClaimVerdict.FAIL


def test_an_unknown_check_is_never_a_pass(tmp_path: Path) -> None:
    odd = Sc("pitr-restore", [C08], checks=[("pitr_restore_complete", "UNKNOWN", {})])
    row = rows(write_bundle(tmp_path, [odd]))[C08]
    assert row.verdict is ClaimVerdict.INCONCLUSIVE


def test_audit_only_claims_are_configured_and_name_the_manifests(tmp_path: Path) -> None:
    audits = [{"rule": "ingress-tls", "claims": [C02], "verdict": "PASS"},
              {"rule": "probes-declared", "claims": [C01], "verdict": "PASS"}]
    got = rows(write_bundle(tmp_path, [], audits=audits))
    assert got[C02].verdict is ClaimVerdict.PASS  # no scenario cites it: the audit is all
    assert got[C02].strength is Strength.CONFIGURED
    assert got[C02].strength_text == "configured (static audit of deploy/k8s)"
    assert got[C01].verdict is ClaimVerdict.PARTIAL  # 8 scenarios cite it, none ran
    assert got[C01].coverage_text == "0 of 8 scenarios; audit: probes-declared PASS"
    assert got[C08].verdict is ClaimVerdict.UNTESTED and got[C08].strength is Strength.UNTESTED


def test_a_failed_audit_rule_fails_the_claim(tmp_path: Path) -> None:
    audits = [{"rule": "probes-declared", "claims": [C01], "verdict": "FAIL"}]
    got = rows(write_bundle(tmp_path, [Sc(n, [C01]) for n in FAILOVERS], audits=audits))
    assert got[C01].verdict is ClaimVerdict.FAIL
    assert got[C01].strength_text == ("exercised (drill on target local; static audit of "
                                      "deploy/k8s)")


def test_audit_rules_that_did_not_run_keep_a_claim_partial(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, [Sc(n, [C01]) for n in FAILOVERS],
                          audit_citations={C01: ["probes-declared"]})
    row = rows(bundle)[C01]
    assert row.verdict is ClaimVerdict.PARTIAL and "probes-declared" in row.why


def test_a_scenario_that_injected_nothing_is_no_exercise(tmp_path: Path) -> None:
    row = rows(write_bundle(tmp_path, [Sc("pitr-restore", [C08], outcome="baseline-not-met",
                                          injected=False, checks=[])]))[C08]
    assert row.verdict is ClaimVerdict.INCONCLUSIVE and row.strength is Strength.UNTESTED


# -- the formats agree ----------------------------------------------------------------------

def mixed_run(tmp_path: Path) -> Path:
    """A run whose scenarios each end differently."""
    never = {**MEASURED, "rto_seconds": None, "rto_error_seconds": None,
             "rto_exceeds_seconds": 60.0, "fault_to_recovery_seconds": None}
    unknown_loss = {**MEASURED, "lost_acknowledged_writes": "unknown",
                    "lost_unknown_reason": "read-back failed: OFFSET_NOT_AVAILABLE"}
    quiet = {**MEASURED, "rto_seconds": None, "rto_error_seconds": None,
             "outage_observed": False}
    return write_bundle(tmp_path, [
        Sc("failover-0", [C01, C15]),
        Sc("failover-1", [C01, C15], outcome="failed", reason="never recovered within 60s",
           measurements=never, undo_failures=["redis.restart_member"]),
        Sc("failover-2", [C01, C15], outcome="inconclusive", reason="read-back failed",
           measurements=unknown_loss),
        Sc("pitr-restore", [C08], measurements=quiet),
    ], audits=[{"rule": "ingress-tls", "claims": [C02], "verdict": "PASS"}],
        outcome="failed", exit_code=1)


def test_summary_has_claim_detail_run_facts_and_per_check_measurements(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, [Sc("pitr-restore", [C08], checks=[
        ("pitr_restore_complete", "PASS", {"rows_missing": 0, "lost_acknowledged_writes": 0}),
        ("no_acknowledged_write_lost", "PASS", {"lost_acknowledged_writes": 3}),
    ], measurements={"rto_seconds": 1.5})], outcome="passed", exit_code=0)
    render_bundle(bundle)
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["exit_code"] == 0 and summary["signing"] == SIGNING["fingerprint"]
    assert summary["claims"][C08] == "PASS" and summary["claims"][C01] == "UNTESTED"
    assert summary["claims_untested"] == [C01, C02, C15]
    detail = summary["claims_detail"][C08]
    assert detail == {"verdict": "PASS", "strength": "exercised",
                      "strength_detail": "drill on target local", "coverage": "1 of 1 scenarios",
                      "scenarios_run": ["pitr-restore"], "scenarios_citing": ["pitr-restore"],
                      "audit_rules": {}, "why": detail["why"]}
    scenario = summary["scenarios"][0]
    assert [c["measurements"] for c in scenario["checks"]] == [
        {"rows_missing": 0, "lost_acknowledged_writes": 0}, {"lost_acknowledged_writes": 3}]
    # the scenario's figures are the scenario-end's, with the contract keys always there
    assert scenario["measurements"] == {"rto_seconds": 1.5, "rto_error_seconds": None,
                                        "acknowledged_writes": None,
                                        "lost_acknowledged_writes": None}


def test_junit_agrees_with_the_matrix(tmp_path: Path) -> None:
    bundle = mixed_run(tmp_path)
    render_bundle(bundle)
    root = ET.parse(bundle / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}

    def result(suite: str, case: str) -> str:
        el = suites[suite].find(f"testcase[@name='{case}']")
        assert el is not None, (suite, case)
        return next((c.tag for c in el if c.tag != "system-out"), "pass")

    assert result("failover-0", "outcome") == "pass"
    # its check passed, but the scenario failed: the outcome case says so
    assert result("failover-1", "recovered_within_slo") == "pass"
    assert result("failover-1", "outcome") == "failure"
    assert result("failover-2", "outcome") == "error"
    assert result("claims", C01) == "failure" and result("claims", C15) == "failure"
    assert result("claims", C02) == "pass" and result("claims", C08) == "pass"
    assert suites["claims"].get("failures") == "2" and suites["failover-1"].get("failures") == "1"


def test_junit_claims_partial_inconclusive_and_untested(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, [
        Sc("failover-0", [C01]),
        Sc("pitr-restore", [C08], outcome="error", reason="crashed"),
    ], outcome="error", exit_code=3)
    render_bundle(bundle)
    claims = next(s for s in ET.parse(bundle / "junit.xml").getroot().iter("testsuite")
                  if s.get("name") == "claims")
    by_id = {c.get("name"): c for c in claims.iter("testcase")}
    skipped = by_id[C01].find("skipped")
    assert skipped is not None and "1 of 8 scenarios" in (skipped.get("message") or "")
    assert by_id[C08].find("error") is not None
    untested = by_id[C02].find("skipped")
    assert untested is not None and "nothing in this run tests it" in (
        untested.get("message") or "")
    assert claims.get("errors") == "1" and claims.get("skipped") == "3"


def test_reports_show_verdict_strength_coverage_rto_loss_and_signing(tmp_path: Path) -> None:
    bundle = mixed_run(tmp_path)
    render_bundle(bundle)
    for name in ("report.md", "report.html"):
        text = (bundle / name).read_text()
        assert SIGNING["fingerprint"] in text, name
        assert "FAIL" in text and "exercised (drill on target local)" in text, name
        assert "configured (static audit of deploy/k8s)" in text, name
        assert "3 of 8 scenarios" in text, name
        assert "2.381 s ± 0.020 s" in text and "2.900 s" in text, name  # RTO, fault time
        assert "&gt; 60.000 s" in text or "> 60.000 s" in text, name  # never recovered
        assert "no outage observed" in text, name
        assert "unknown (read-back failed: OFFSET_NOT_AVAILABLE)" in text, name
        assert "redis.restart_member" in text, name  # the undo that failed


def test_unsigned_runs_say_so(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path, [Sc("failover-0", [C01])], signing=None)
    render_bundle(bundle)
    assert "Signing key: `unsigned`" in (bundle / "report.md").read_text()
    assert ">unsigned</code>" in (bundle / "report.html").read_text()
    assert json.loads((bundle / "summary.json").read_text())["signing"] is None


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    bundle = mixed_run(tmp_path)
    names = ("summary.json", "report.md", "report.html", "junit.xml")
    render_bundle(bundle)
    first = {n: (bundle / n).read_bytes() for n in names}
    render_bundle(bundle)
    assert {n: (bundle / n).read_bytes() for n in names} == first


def write_legacy(tmp_path: Path) -> Path:
    """A journal written before claim citations, signing and exit codes existed: `op`
    events carry the operation's number in `seq`."""
    bundle = tmp_path / "legacy"
    bundle.mkdir()
    t = 1000.0
    events: list[dict[str, Any]] = [
        {"event": "run-start", "run_id": "old", "target": "local", "claims_registry": REGISTRY,
         "environment": {"drill_version": "0.1"}},
        {"event": "scenario-start", "scenario": "failover-0", "claims": [C01], "slo": {}},
        {"event": "op", "scenario": "failover-0", "workload": "w", "seq": 7, "invoked": t + 1,
         "completed": t + 1.1, "status": "ok"},
        {"event": "fault-invoke", "scenario": "failover-0", "name": "redis.kill_primary",
         "t": t + 2},
        {"event": "undo-failed", "scenario": "failover-0", "action": "redis.restart_member",
         "error": "boom"},
        {"event": "check", "scenario": "failover-0", "check": "recovered_within_slo",
         "verdict": "PASS", "summary": "ok", "evidence": {"t_fault": t + 2}},
        {"event": "scenario-end", "scenario": "failover-0", "outcome": "passed",
         "reason": "every check passed",
         "measurements": {"rto_seconds": 0.5, "rto_error_seconds": 0.01}, "seconds": 4.0},
        {"event": "run-end", "outcome": "passed"},
    ]
    lines = [json.dumps({"seq": i, "mono": t + i, "wall": f"2024-01-01T00:00:0{i}+00:00",
                         "prev": "0" * 64, **ev}) for i, ev in enumerate(events)]
    (bundle / "journal.jsonl").write_text("\n".join(lines) + "\n")
    return bundle


def test_journals_from_before_render_with_defaults(tmp_path: Path) -> None:
    bundle = write_legacy(tmp_path)
    render_bundle(bundle)
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["exit_code"] is None and summary["signing"] is None
    # nothing says how many scenarios cite it: never a plain PASS
    assert summary["claims"][C01] == "PARTIAL"
    assert summary["claims_detail"][C01]["coverage"] == "1 of ? scenarios"
    assert summary["scenarios"][0]["undo_failures"] == ["redis.restart_member"]
    assert "0.500 s ± 0.010 s" in (bundle / "report.md").read_text()
    assert "unsigned" in (bundle / "report.html").read_text()


# -- drill claims ------------------------------------------------------------------------

@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    monkeypatch.chdir(ROOT)


def test_drill_claims_after_one_scenario_shows_partial(tmp_path: Path, wide: None,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_bundle(tmp_path, [Sc("failover-0", [C01])])
    assert main(["claims", str(bundle)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if C01 in ln)
    assert "PARTIAL" in line and "1 of 8 scenarios" in line and "PASS" not in line
    assert "exercised (drill on target local)" in line and "failover-0" in line
    headers = [[c.strip() for c in ln.split("┃") if c.strip()] for ln in out.splitlines()]
    assert ["claim", "verdict", "strength", "coverage", "tested by", "why"] in headers


def test_drill_claims_without_a_run_shows_the_library(tmp_path: Path, wide: None,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("drillrunner.cli.claims_cmds._newest_bundle", lambda root: None)
    assert main(["claims"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if C01 in ln)
    assert "UNTESTED" in line and "0 of 13 scenarios" in line and "probes-declared" in line


# -- the registry is not runnable -----------------------------------------------------------

@pytest.mark.parametrize("ref", ["claims", "drills/claims.yaml"])
def test_run_refuses_the_claim_registry(ref: str, wide: None,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", ref]) == 2
    err = capsys.readouterr().err
    assert "is the claim registry" in err and "Traceback" not in err


def test_known_names_do_not_offer_the_registry(wide: None,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "no-such-drill"]) == 2
    err = capsys.readouterr().err
    known = err.split("known: ", 1)[1]
    assert "quarterly-dr" in known and "claims" not in known.split(", ")

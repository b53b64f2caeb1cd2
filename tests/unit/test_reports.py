"""Evidence bundles rendered from a real engine run over the in-process fake service."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from drillrunner.cli import main
from drillrunner.engine.runner import Runner
from drillrunner.evidence.journal import Journal
from drillrunner.evidence.manifest import verify
from drillrunner.model.loader import load
from drillrunner.report.bundle import render_bundle
from tests.support import missing
from tests.unit.fake_actions import FakeTarget
from tests.unit.test_runner import CATALOG, DEFAULT_VERIFY, SCENARIO, Phases

SECRET = "s3cr3t-Pa55"
REGISTRY = [{"id": "C15-dr-drills", "text": "drills", "source": "Ongoing Monitoring"},
            {"id": "C02-tls-ingress", "text": "tls", "source": "TLS enforcement"}]


def make_bundle(tmp_path: Path, faults: str = "  - fake.break_it: {outage: 300ms}") -> Path:
    bundle = tmp_path / "bundle"
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(faults=faults, verify=DEFAULT_VERIFY))
    doc, _ = load(path)
    assert doc is not None
    journal = Journal(bundle / "journal.jsonl")
    journal.append("run-start", run_id="r1", target="fake", claims_registry=REGISTRY,
                   claim_citations={"C15-dr-drills": ["fake"]}, signing=None,
                   environment={"dsn": f"postgresql://app:{SECRET}@127.0.0.1/x"})
    res = Runner(FakeTarget(), CATALOG, journal, Phases()).run_scenario(doc)  # type: ignore[arg-type]
    journal.append("run-end", outcome=res.outcome.value)
    journal.close()
    render_bundle(bundle)
    return bundle


def test_bundle_has_every_format_and_claim_verdicts(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    for name in ("journal.jsonl", "summary.json", "report.md", "report.html", "junit.xml",
                 "MANIFEST.sha256"):
        assert (bundle / name).is_file(), name
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["claims"] == {"C02-tls-ingress": "UNTESTED", "C15-dr-drills": "PASS"}
    assert summary["claims_untested"] == ["C02-tls-ingress"]
    assert summary["claims_detail"]["C15-dr-drills"]["strength"] == "exercised"
    junit = (bundle / "junit.xml").read_text()
    # two checks and the scenario's outcome, then one case per claim
    assert junit.count("<testcase") == 5 and "<failure" not in junit and "<error" not in junit
    assert "<svg" in (bundle / "report.html").read_text()


def test_failed_check_fails_the_claim_and_junit(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, "  - fake.break_it: {lose_writes: true}")
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["claims"]["C15-dr-drills"] == "FAIL"
    junit = (bundle / "junit.xml").read_text()
    assert '<testcase classname="fake" name="outcome">\n      <failure' in junit
    assert '<testcase classname="claims" name="C15-dr-drills">\n      <failure' in junit


def test_no_secret_reaches_any_file(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    for path in bundle.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


def test_verify_detects_change_removal_and_addition(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    assert verify(bundle) == []
    assert main(["verify", str(bundle)]) == 0
    report = bundle / "report.md"
    report.write_text(report.read_text().replace("passed", "PASSED!"))
    (bundle / "junit.xml").unlink()
    (bundle / "extra.txt").write_text("x")
    problems = verify(bundle)
    assert "changed: report.md" in problems
    assert "missing: junit.xml" in problems
    assert "added: extra.txt" in problems
    assert main(["verify", str(bundle)]) == 1


def test_journal_edit_breaks_the_chain(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    lines = (bundle / "journal.jsonl").read_text().splitlines()
    lines.pop(3)
    (bundle / "journal.jsonl").write_text("\n".join(lines) + "\n")
    assert any("hash chain broken" in p for p in verify(bundle))


def test_report_rerenders_from_the_journal_alone(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path)
    before = (bundle / "summary.json").read_text()
    for name in ("summary.json", "report.md", "report.html", "junit.xml", "MANIFEST.sha256"):
        (bundle / name).unlink()
    assert main(["report", str(bundle)]) == 0
    assert (bundle / "summary.json").read_text() == before
    assert verify(bundle) == []


def test_html_renders_in_headless_chromium_without_fetching(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        missing("chromium is missing: install the Debian package chromium")
    bundle = make_bundle(tmp_path)
    html = (bundle / "report.html").read_text()
    # Self-contained: nothing the page could load from elsewhere. (Chromium's own update and
    # account pings show in a net log whatever the page does, so the page itself is checked.)
    assert not re.search(r"""(src|href|xlink:href)\s*=\s*["']?(https?:|//|file:)""", html)
    assert "url(" not in html and "@import" not in html and "<script" not in html
    out = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         (bundle / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True)
    dom = out.stdout
    assert 'class="timeline"' in dom and 'class="fault"' in dom and 'class="rto"' in dom
    assert 'id="claims"' in dom


def test_reports_evidence_and_model_import_nothing_of_the_engine() -> None:
    """A bundle renders from its journal alone: report/, evidence/ and model/ never
    reach into the engine (nor into services, targets or the CLI)."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src" / "drillrunner"
    allowed = {"report": {"core", "evidence", "report"}, "evidence": {"core", "evidence"},
               "model": {"core", "model"}}
    found = []
    for layer, ok in allowed.items():
        for path in sorted((src / layer).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                         [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                for name in names:
                    parts = name.split(".")
                    if parts[0] == "drillrunner" and len(parts) > 1 and parts[1] not in ok:
                        found.append(f"{path.relative_to(src)}: {name}")
    assert found == []

"""junit.xml: drills as tests, agreeing with the claim matrix.

Each scenario is a suite: one case per check plus an `outcome` case, so a scenario that did
not pass is never green even when each of its checks passed. A `claims` suite has one case
per claim: PASS passes, FAIL fails, INCONCLUSIVE errs, PARTIAL and UNTESTED are skipped.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from drillrunner.core.verdicts import Outcome, Verdict
from drillrunner.report.claims import ClaimVerdict, claim_rows
from drillrunner.report.view import RunView, ScenarioView

FAILED_OUTCOMES = {Outcome.FAILED, Outcome.BASELINE_NOT_MET, Outcome.ABORTED}


class _Suite:
    """A testsuite element that counts what its cases report."""

    def __init__(self, parent: ET.Element, name: str, seconds: float) -> None:
        self.el = ET.SubElement(parent, "testsuite", name=name, time=f"{seconds:.3f}")
        self.counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    def case(self, classname: str, name: str, result: str | None = None,
             message: str = "", out: str = "") -> None:
        """`result`: None (pass), "failure", "error" or "skipped"."""
        case = ET.SubElement(self.el, "testcase", classname=classname, name=name)
        self.counts["tests"] += 1
        if result is not None:
            self.counts["failures" if result == "failure" else
                        "errors" if result == "error" else "skipped"] += 1
            ET.SubElement(case, result, message=message).text = message
        if out:
            ET.SubElement(case, "system-out").text = out

    def close(self) -> None:
        for key, value in self.counts.items():
            self.el.set(key, str(value))


def _outcome_result(outcome: str) -> str | None:
    if outcome == Outcome.PASSED:
        return None
    return "failure" if outcome in FAILED_OUTCOMES else "error"


def _scenario(parent: ET.Element, s: ScenarioView) -> None:
    suite = _Suite(parent, s.name, s.seconds)
    for c in s.checks:
        verdict, text = c.get("verdict"), str(c.get("summary", ""))
        result = None if verdict == Verdict.PASS else (
            "failure" if verdict == Verdict.FAIL else "error")  # UNKNOWN is never a pass
        suite.case(s.name, str(c["check"]), result, text, f"outcome {s.outcome}: {s.reason}")
    unsaid = [u for u in s.undo_failures if u not in s.reason]
    undo = f"; undo failed: {', '.join(unsaid)}" if unsaid else ""
    suite.case(s.name, "outcome", _outcome_result(s.outcome), f"{s.outcome}: {s.reason}{undo}",
               f"outcome {s.outcome}: {s.reason}{undo}")
    suite.close()


_CLAIM_RESULT = {ClaimVerdict.PASS: None, ClaimVerdict.FAIL: "failure",
                 ClaimVerdict.INCONCLUSIVE: "error", ClaimVerdict.PARTIAL: "skipped",
                 ClaimVerdict.UNTESTED: "skipped"}


def render(run: RunView) -> bytes:
    suites = ET.Element("testsuites", name=f"drill {run.run_id}")
    for s in run.scenarios:
        _scenario(suites, s)
    claims = _Suite(suites, "claims", 0.0)
    for row in claim_rows(run):
        text = f"{row.verdict.value}, {row.strength_text}, {row.coverage_text}: {row.why}"
        claims.case("claims", row.id, _CLAIM_RESULT[row.verdict], text, text)
    claims.close()
    ET.indent(suites)
    return bytes(ET.tostring(suites, encoding="utf-8", xml_declaration=True))


def write_junit(run: RunView, bundle: Path) -> Path:
    path = bundle / "junit.xml"
    path.write_bytes(render(run))
    return path

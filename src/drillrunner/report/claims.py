"""Claim verdicts: what this run shows about each claim of the review, and how strongly.

- FAIL: a scenario citing the claim ended `failed`, one of its checks failed, or an audit
  rule citing it failed.
- INCONCLUSIVE: else, a scenario citing it ended without a verdict (inconclusive, error,
  interrupted, aborted, baseline-not-met) or a check of it is UNKNOWN.
- PASS: else, every scenario of the library citing it ran in this run and passed, and every
  audit rule citing it passed.
- PARTIAL: what ran passed, but not everything citing the claim ran ("1 of 8 scenarios").
- UNTESTED: nothing in this run tests it.

Strength says what kind of evidence stands behind the verdict: `exercised` (a scenario
injected its faults on a live target), `configured` (only the static audit of manifests),
or `untested`. Audit rules are listed in `tested_by` as `audit:<rule>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from drillrunner.core.verdicts import Outcome, Verdict
from drillrunner.report.view import RunView, ScenarioView


class ClaimVerdict(StrEnum):
    PASS = "PASS"
    PARTIAL = "PARTIAL"
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"
    UNTESTED = "UNTESTED"


class Strength(StrEnum):
    EXERCISED = "exercised"
    CONFIGURED = "configured"
    UNTESTED = "untested"


@dataclass
class ClaimRow:
    id: str
    text: str
    source: str
    verdict: ClaimVerdict = ClaimVerdict.UNTESTED
    strength: Strength = Strength.UNTESTED
    strength_detail: str = ""  # which target, which manifests
    scenarios_run: list[str] = field(default_factory=list)
    scenarios_citing: list[str] | None = None  # None: the journal does not record citations
    audit_rules: dict[str, str] = field(default_factory=dict)  # rule -> PASS / FAIL
    why: str = ""

    @property
    def tested_by(self) -> list[str]:
        return self.scenarios_run + [f"audit:{rule}" for rule in self.audit_rules]

    @property
    def untested(self) -> bool:
        return self.verdict is ClaimVerdict.UNTESTED

    @property
    def coverage(self) -> str:
        n = "?" if self.scenarios_citing is None else len(self.scenarios_citing)
        return f"{len(self.scenarios_run)} of {n} scenarios"

    @property
    def coverage_text(self) -> str:
        """Coverage with the audit rules, for tables."""
        rules = ", ".join(f"{r} {v}" for r, v in self.audit_rules.items())
        return self.coverage + (f"; audit: {rules}" if rules else "")

    @property
    def strength_text(self) -> str:
        return self.strength.value + (f" ({self.strength_detail})" if self.strength_detail else "")

    def detail(self) -> dict[str, Any]:
        """summary.json's `claims_detail` entry."""
        return {"verdict": self.verdict.value, "strength": self.strength.value,
                "strength_detail": self.strength_detail, "coverage": self.coverage,
                "scenarios_run": self.scenarios_run, "scenarios_citing": self.scenarios_citing,
                "audit_rules": self.audit_rules, "why": self.why}


NO_VERDICT = {Outcome.INCONCLUSIVE, Outcome.ERROR, Outcome.INTERRUPTED, Outcome.ABORTED,
              Outcome.BASELINE_NOT_MET}


def claim_rows(run: RunView) -> list[ClaimRow]:
    rows = {c["id"]: ClaimRow(c["id"], c.get("text", ""), c.get("source", ""))
            for c in run.claims}
    cited = [c for s in run.scenarios for c in s.claims]
    cited += [c for a in run.audits for c in a.get("claims", [])]
    for claim in cited:
        rows.setdefault(claim, ClaimRow(claim, "(not in the registry)", ""))
    for row in rows.values():
        _judge(row, run)
    return sorted(rows.values(), key=lambda r: r.id)


def _judge(row: ClaimRow, run: RunView) -> None:
    scenarios = [s for s in run.scenarios if row.id in s.claims]
    audits = [a for a in run.audits if row.id in a.get("claims", [])]
    row.scenarios_run = list(dict.fromkeys(s.name for s in scenarios))
    if run.claim_citations is not None:
        row.scenarios_citing = sorted({*run.claim_citations.get(row.id, []), *row.scenarios_run})
    row.audit_rules = {str(a["rule"]): str(a.get("verdict", Verdict.UNKNOWN))
                       for a in sorted(audits, key=lambda a: str(a["rule"]))}
    row.strength, row.strength_detail = _strength(scenarios, audits, run)
    failed, unsure = _failures(scenarios, audits)
    if failed:
        row.verdict, row.why = ClaimVerdict.FAIL, "failed: " + "; ".join(failed)
    elif unsure:
        row.verdict, row.why = ClaimVerdict.INCONCLUSIVE, "no verdict from: " + "; ".join(unsure)
    elif not scenarios and not audits:
        row.verdict, row.why = ClaimVerdict.UNTESTED, _untested_why(row, run)
    else:
        gaps = _gaps(row, run)
        row.verdict = ClaimVerdict.PARTIAL if gaps else ClaimVerdict.PASS
        row.why = _passed_why(row, gaps)


def _untested_why(row: ClaimRow, run: RunView) -> str:
    n = len(row.scenarios_citing or [])
    rules = (run.audit_citations or {}).get(row.id, [])
    cited = ([f"{_scenarios(n)} of the library"] if n else []) + (
        [f"audit rule(s) {', '.join(sorted(rules))}"] if rules else [])
    return "nothing in this run tests it" + (f"; cited by {' and '.join(cited)}" if cited else "")


def _passed_why(row: ClaimRow, gaps: list[str]) -> str:
    k = len(row.scenarios_run)
    passed = [f"{_scenarios(k)} passed" if gaps else "the scenario citing it passed" if k == 1
              else f"all {k} scenarios citing it passed"] if k else []
    if row.audit_rules:
        passed.append("audit passed: " + ", ".join(row.audit_rules))
    return "; ".join(passed) + (", but " + "; ".join(gaps) if gaps else "")


def _scenarios(n: int) -> str:
    return "1 scenario" if n == 1 else f"{n} scenarios"


def _failures(scenarios: list[ScenarioView],
              audits: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """What failed, and what gave no verdict, among the evidence citing a claim."""
    failed: list[str] = []
    unsure: list[str] = []
    for s in scenarios:
        bad_checks = [c["check"] for c in s.checks if c.get("verdict") == Verdict.FAIL]
        if s.outcome == Outcome.FAILED:
            failed.append(f"{s.name} ({s.reason})")
        elif bad_checks:  # a failed check is a failure whatever ended the scenario
            failed.append(f"{s.name} ({s.outcome}; failed checks: {', '.join(bad_checks)})")
        elif s.outcome != Outcome.PASSED:
            unsure.append(f"{s.name} ({s.outcome}: {s.reason})")
        else:
            unsure += [f"{s.name}/{c['check']} UNKNOWN" for c in s.checks
                       if c.get("verdict") != Verdict.PASS]
    for a in audits:
        if a.get("verdict") == Verdict.FAIL:
            failed.append(f"audit:{a['rule']} ({len(a.get('findings', []))} finding(s))")
        elif a.get("verdict") != Verdict.PASS:
            unsure.append(f"audit:{a['rule']} {a.get('verdict', Verdict.UNKNOWN)}")
    return failed, unsure


def _gaps(row: ClaimRow, run: RunView) -> list[str]:
    """Why a claim whose evidence all passed is still not a PASS: what did not run."""
    gaps: list[str] = []
    if row.scenarios_citing is None:
        gaps.append("coverage is unknown: the journal does not record which scenarios cite it")
    elif missing := [n for n in row.scenarios_citing if n not in row.scenarios_run]:
        gaps.append(f"only {row.coverage} citing it ran (not run: {', '.join(missing)})")
    if run.audit_citations is not None:
        rules = [r for r in run.audit_citations.get(row.id, []) if r not in row.audit_rules]
        if rules:
            gaps.append(f"the audit rules citing it did not run ({', '.join(sorted(rules))})")
    return gaps


def _strength(scenarios: list[ScenarioView], audits: list[dict[str, Any]],
              run: RunView) -> tuple[Strength, str]:
    exercised = any(s.exercised for s in scenarios)
    details = [f"drill on target {run.target}"] if exercised else []
    if audits:
        details.append("static audit of " + (", ".join(run.audit_manifests) or "manifests"))
    if exercised:
        return Strength.EXERCISED, "; ".join(details)
    if audits:
        return Strength.CONFIGURED, "; ".join(details)
    return Strength.UNTESTED, ""

"""Claim verdicts: FAIL if any check or audit rule of a claim failed, UNKNOWN if any is
unknown or the claim is untested, PASS only when every check and audit rule that tests it
passed. Audit rules are listed in `tested_by` as `audit:<rule>`."""

from __future__ import annotations

from dataclasses import dataclass, field

from drillrunner.engine.verdicts import Verdict
from drillrunner.report.view import RunView


@dataclass
class ClaimRow:
    id: str
    text: str
    source: str
    verdict: Verdict = Verdict.UNKNOWN
    tested_by: list[str] = field(default_factory=list)
    why: str = "untested: no scenario in this run cites it"

    @property
    def untested(self) -> bool:
        return not self.tested_by


def claim_rows(run: RunView) -> list[ClaimRow]:
    rows = {c["id"]: ClaimRow(c["id"], c.get("text", ""), c.get("source", ""))
            for c in run.claims}
    for s in run.scenarios:
        for claim in s.claims:
            rows.setdefault(claim, ClaimRow(claim, "(not in the registry)", ""))
            rows[claim].tested_by.append(s.name)
    for a in run.audits:
        for claim in a.get("claims", []):
            rows.setdefault(claim, ClaimRow(claim, "(not in the registry)", ""))
            rows[claim].tested_by.append(f"audit:{a['rule']}")
    for row in rows.values():
        if row.untested:
            continue
        verdicts: list[tuple[str, str]] = []
        for s in run.scenarios:
            if row.id not in s.claims:
                continue
            if not s.checks:
                verdicts.append((s.name, f"UNKNOWN ({s.outcome}: {s.reason})"))
            verdicts += [(f"{s.name}/{c['check']}", c["verdict"]) for c in s.checks]
        verdicts += [(f"audit:{a['rule']} ({len(a.get('findings', []))} finding(s))"
                      if a.get("verdict") == Verdict.FAIL else f"audit:{a['rule']}",
                      str(a.get("verdict", Verdict.UNKNOWN)))
                     for a in run.audits if row.id in a.get("claims", [])]
        failed = [n for n, v in verdicts if v == Verdict.FAIL]
        unknown = [n for n, v in verdicts if v.startswith(Verdict.UNKNOWN)]
        if failed:
            row.verdict, row.why = Verdict.FAIL, "failed: " + ", ".join(failed)
        elif unknown:
            row.verdict, row.why = Verdict.UNKNOWN, "no verdict from: " + ", ".join(unknown)
        else:
            row.verdict, row.why = Verdict.PASS, f"{len(verdicts)} check(s) or rule(s) passed"
    return sorted(rows.values(), key=lambda r: r.id)

"""report.md: for pull requests and wikis. Deterministic: the same journal renders the same
bytes (nothing but the journal goes in, and every list has a fixed order)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drillrunner.report.claims import claim_rows
from drillrunner.report.view import (
    RunView,
    ScenarioView,
    lost_text,
    rto_text,
    seconds_text,
    value_text,
)


def _cell(value: Any, limit: int = 0) -> str:
    """A table cell: pipes escaped, one line."""
    text = str(value).replace("|", "\\|").replace("\n", " ")
    return text[:limit] if limit else text


def _row(*cells: Any) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def render(run: RunView) -> str:
    signing = run.fingerprint + (f" ({run.signing['algorithm']})"
                                 if run.signing and run.signing.get("algorithm") else "")
    lines = [
        f"# Drill report {run.run_id}",
        "",
        f"- Target: `{run.target}`",
        f"- Outcome: **{run.outcome}** (exit code {value_text(run.exit_code)})",
        f"- Signing key: `{signing}`",
        f"- Started: {run.started}  ·  Ended: {run.ended or 'did not finish'}",
    ]
    for key, value in sorted(run.environment.items()):
        lines.append(f"- {key}: {value}")
    lines += ["", "| scenario | outcome | RTO | fault to recovery | acknowledged writes | lost "
              "| undo failures | claims |", "|---|---|---|---|---|---|---|---|"]
    for s in run.scenarios:
        m = s.measurements
        lines.append(_row(s.name, s.outcome, rto_text(m),
                          seconds_text(m.get("fault_to_recovery_seconds")),
                          value_text(m.get("acknowledged_writes")), lost_text(m),
                          ", ".join(s.undo_failures) or "none", ", ".join(s.claims)))
    lines += ["", "## Claims", "",
              "| claim | verdict | strength | coverage | tested by | why |",
              "|---|---|---|---|---|---|"]
    for row in claim_rows(run):
        lines.append(_row(row.id, f"**{row.verdict.value}**", row.strength_text,
                          row.coverage_text, ", ".join(row.tested_by) or "-", row.why))
    for s in run.scenarios:
        lines += ["", *_scenario(s)]
    return "\n".join(lines) + "\n"


def _scenario(s: ScenarioView) -> list[str]:
    m = s.measurements
    out = [f"## {s.name}: {s.outcome}", "", f"{s.title}", "", f"- Why: {s.reason}",
           f"- File: `{s.file}`", f"- SLO: {value_text(s.slo) or 'none'}",
           f"- RTO: {rto_text(m)} (fault to recovery: "
           f"{seconds_text(m.get('fault_to_recovery_seconds'))})",
           f"- Acknowledged writes lost: {lost_text(m)}"]
    if s.undo_failures:
        out.append(f"- Undo failed (still pending for `drill recover`): "
                   f"{', '.join(s.undo_failures)}")
    for key, value in sorted(m.items()):
        out.append(f"- {key}: {value_text(value)}")
    for workload, (ok, fail, unknown) in sorted(s.ops.items()):
        out.append(f"- workload {workload}: {ok} ok, {fail} failed, {unknown} unknown")
    if s.checks:
        out += ["", "| check | verdict | evidence | measurements |", "|---|---|---|---|"]
        for c in s.checks:
            measured = ", ".join(f"{k}={value_text(v)}"
                                 for k, v in sorted((c.get("measurements") or {}).items()))
            out.append(_row(c["check"], f"**{c['verdict']}**", c.get("summary", ""),
                            measured or "-"))
    if s.timeline:
        out += ["", "| t (s) | event | what | detail |", "|---|---|---|---|"]
        for t in s.timeline:
            out.append(_row(f"{t['t']:.3f}", t["event"], t["what"], _cell(t["detail"], 160)))
    return out


def write_markdown(run: RunView, bundle: Path) -> Path:
    path = bundle / "report.md"
    path.write_text(render(run))
    return path

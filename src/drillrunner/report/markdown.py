"""report.md: for pull requests and wikis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drillrunner.report.claims import claim_rows
from drillrunner.report.view import RunView, ScenarioView


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}{unit}"
    return f"{value}{unit}"


def _rto(m: dict[str, Any]) -> str:
    if m.get("rto_seconds") is None:
        return "n/a"
    return f"{m['rto_seconds']:.3f}s ± {_fmt(m.get('rto_error_seconds'), 's')}"


def render(run: RunView) -> str:
    lines = [
        f"# Drill report {run.run_id}",
        "",
        f"- Target: `{run.target}`",
        f"- Outcome: **{run.outcome}**",
        f"- Started: {run.started}  ·  Ended: {run.ended or 'did not finish'}",
    ]
    for key, value in sorted(run.environment.items()):
        lines.append(f"- {key}: {value}")
    lines += ["", "| scenario | outcome | RTO | acknowledged writes | lost | claims |",
              "|---|---|---|---|---|---|"]
    for s in run.scenarios:
        m = s.measurements
        lines.append(
            f"| {s.name} | {s.outcome} | {_rto(m)} | {_fmt(m.get('acknowledged_writes'))} | "
            f"{_fmt(m.get('lost_acknowledged_writes'))} | {', '.join(s.claims)} |")
    lines += ["", "## Claims", "", "| claim | verdict | tested by | why |", "|---|---|---|---|"]
    for row in claim_rows(run):
        lines.append(f"| {row.id} | **{row.verdict.value}** | {', '.join(row.tested_by) or '-'}"
                     f" | {row.why} |")
    for s in run.scenarios:
        lines += ["", *_scenario(s)]
    return "\n".join(lines) + "\n"


def _scenario(s: ScenarioView) -> list[str]:
    out = [f"## {s.name}: {s.outcome}", "", f"{s.title}", "", f"- Why: {s.reason}",
           f"- File: `{s.file}`", f"- SLO: {s.slo}"]
    for key, value in sorted(s.measurements.items()):
        out.append(f"- {key}: {_fmt(value)}")
    for workload, (ok, fail, unknown) in sorted(s.ops.items()):
        out.append(f"- workload {workload}: {ok} ok, {fail} failed, {unknown} unknown")
    if s.checks:
        out += ["", "| check | verdict | evidence |", "|---|---|---|"]
        for c in s.checks:
            out.append(f"| {c['check']} | **{c['verdict']}** | {c['summary']} |")
    if s.timeline:
        out += ["", "| t (s) | event | what | detail |", "|---|---|---|---|"]
        for t in s.timeline:
            detail = str(t["detail"]).replace("|", "\\|").replace("\n", " ")[:160]
            out.append(f"| {t['t']:.3f} | {t['event']} | {t['what']} | {detail} |")
    return out


def write_markdown(run: RunView, bundle: Path) -> Path:
    path = bundle / "report.md"
    path.write_text(render(run))
    return path

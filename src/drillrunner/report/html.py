"""report.html: self-contained (no script, font or style fetched), with the claim matrix and
a timeline chart per scenario drawn as inline SVG. Deterministic: the same journal renders
the same bytes."""

from __future__ import annotations

from html import escape
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

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.PASS,.passed{color:#176b2c;font-weight:600}
.FAIL,.failed,.error,.baseline-not-met,.aborted{color:#b00020;font-weight:600}
.UNKNOWN,.INCONCLUSIVE,.inconclusive,.interrupted{color:#8a5a00;font-weight:600}
.PARTIAL{color:#1565c0;font-weight:600}.UNTESTED,.untested{color:#666;font-weight:600}
.exercised{color:#176b2c}.configured{color:#8a5a00}svg{background:#fafafa;
border:1px solid #ddd}code{background:#f3f3f3;padding:0 3px}.nowrap{white-space:nowrap}
"""
COLORS = {"ok": "#2e9d4a", "fail": "#d32f2f", "unknown": "#f29900"}
W, H, LEFT, RIGHT, TOP = 1000, 170, 50, 20, 20


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def chart(s: ScenarioView) -> str:
    """Workload operations over time (one tick each: ok / fail / unknown), fault markers,
    and the RTO with its error bar."""
    if not s.points and not s.faults:
        return "<p>(no workload operations recorded)</p>"
    recovery = _recovery_time(s)
    t_end = max([p[1] for p in s.points] + [t for t, _ in s.faults] + [1.0] +
                ([recovery] if recovery is not None else []))
    scale = (W - LEFT - RIGHT) / t_end

    def x(t: float) -> float:
        return LEFT + t * scale

    band = {"ok": TOP + 20, "unknown": TOP + 55, "fail": TOP + 90}
    parts = [f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{W}" '
             f'height="{H}" viewBox="0 0 {W} {H}" role="img" '
             f'aria-label="timeline of {_e(s.name)}">']
    for label, y in band.items():
        parts.append(f'<text x="4" y="{y + 4}" font-size="11">{label}</text>')
    for _invoked, done, status in s.points:
        y = band.get(status, TOP)
        parts.append(f'<line x1="{x(done):.1f}" y1="{y - 8}" x2="{x(done):.1f}" y2="{y + 8}" '
                     f'stroke="{COLORS.get(status, "#999")}" stroke-width="1"/>')
    for t, name in s.faults:
        parts.append(f'<line class="fault" x1="{x(t):.1f}" y1="{TOP - 10}" x2="{x(t):.1f}" '
                     f'y2="{H - 35}" stroke="#6a1b9a" stroke-dasharray="4 3"/>'
                     f'<text x="{x(t) + 3:.1f}" y="{TOP - 5}" font-size="11" fill="#6a1b9a">'
                     f'{_e(name)}</text>')
    parts += _rto_marks(s, x)
    step = max(1, round(t_end / 10))
    for tick in range(0, int(t_end) + 1, step):
        parts.append(f'<text x="{x(tick):.1f}" y="{H - 5}" font-size="10" '
                     f'text-anchor="middle">{tick}s</text>')
    parts.append("</svg>")
    return "".join(parts)


def _fault_time(s: ScenarioView) -> float | None:
    """When the fault the RTO is measured against was invoked, relative to the start."""
    check = next((c for c in s.checks if c.get("check") == "recovered_within_slo"), None)
    t_fault = ((check or {}).get("evidence") or {}).get("t_fault")
    if isinstance(t_fault, int | float):
        return float(t_fault) - s.start_mono
    return s.faults[0][0] if s.faults else None


def _recovery_time(s: ScenarioView) -> float | None:
    """When the lasting recovery began, relative to the start (None: not measured)."""
    m, t0 = s.measurements, _fault_time(s)
    span = m.get("fault_to_recovery_seconds")
    if span is None:
        span = m.get("rto_seconds")
    return None if t0 is None or not isinstance(span, int | float) else t0 + span


def _rto_marks(s: ScenarioView, x: Any) -> list[str]:
    """The outage as a bar ending at the lasting recovery, with its error bar; a dashed bar
    to the chart's end when the service never recovered."""
    m = s.measurements
    t0, y = _fault_time(s), H - 30
    if t0 is None:
        return []
    if m.get("rto_exceeds_seconds") is not None:
        return [f'<line class="rto" x1="{x(t0):.1f}" y1="{y}" x2="{W - RIGHT}" y2="{y}" '
                f'stroke="#b00020" stroke-width="3" stroke-dasharray="6 4"/>',
                f'<text x="{x(t0) + 4:.1f}" y="{y - 6}" font-size="11" fill="#b00020">'
                f'RTO {_e(rto_text(m))} (never recovered)</text>']
    rto, t1 = m.get("rto_seconds"), _recovery_time(s)
    if rto is None or t1 is None:
        return []
    err = m.get("rto_error_seconds") or 0.0
    label_at = (f'x="{x(t1) + 4:.1f}"' if x(t1) < W - 260 else
                f'x="{x(t1 - rto) - 4:.1f}" text-anchor="end"')
    return [
        f'<line class="rto" x1="{x(t1 - rto):.1f}" y1="{y}" x2="{x(t1):.1f}" y2="{y}" '
        f'stroke="#1565c0" stroke-width="3"/>',
        f'<line class="rto-error" x1="{x(t1 - err):.1f}" y1="{y - 6}" x2="{x(t1 - err):.1f}" '
        f'y2="{y + 6}" stroke="#1565c0"/><line x1="{x(t1):.1f}" y1="{y - 6}" x2="{x(t1):.1f}" '
        f'y2="{y + 6}" stroke="#1565c0"/>',
        f'<text {label_at} y="{y + 4}" font-size="11" fill="#1565c0">RTO {_e(rto_text(m))}'
        "</text>",
    ]


def render(run: RunView) -> str:
    out = ['<!doctype html><html lang="en"><head><meta charset="utf-8">',
           f"<title>Drill report {_e(run.run_id)}</title><style>{CSS}</style></head><body>",
           f"<h1>Drill report {_e(run.run_id)}</h1>",
           f'<p>Target <code>{_e(run.target)}</code> · outcome '
           f'<span class="{_e(run.outcome)}">{_e(run.outcome)}</span> (exit code '
           f'{_e("n/a" if run.exit_code is None else run.exit_code)}) · {_e(run.started)} → '
           f'{_e(run.ended or "did not finish")}<br>Signing key <code id="signing">'
           f'{_e(run.fingerprint)}</code></p>',
           '<h2>Claims</h2><table id="claims"><tr><th>claim</th><th>verdict</th>'
           "<th>strength</th><th>coverage</th><th>tested by</th><th>why</th>"
           "<th>review reference</th></tr>"]
    for row in claim_rows(run):
        out.append(f'<tr><td class="nowrap" title="{_e(row.text)}">{_e(row.id)}</td><td '
                   f'class="{row.verdict.value}">{row.verdict.value}</td><td class="'
                   f'{row.strength.value}">{_e(row.strength_text)}</td><td>'
                   f'{_e(row.coverage_text)}</td><td>{_e(", ".join(row.tested_by) or "-")}'
                   f"</td><td>{_e(row.why)}</td><td>{_e(row.source)}</td></tr>")
    out.append("</table><h2>Scenarios</h2><table><tr><th>scenario</th><th>outcome</th>"
               "<th>RTO</th><th>fault to recovery</th><th>acknowledged</th><th>lost</th>"
               "<th>undo failures</th></tr>")
    for s in run.scenarios:
        m = s.measurements
        out.append(f'<tr><td><a href="#{_e(s.name)}">{_e(s.name)}</a></td><td class="'
                   f'{_e(s.outcome)}">{_e(s.outcome)}</td><td class="nowrap">'
                   f'{_e(rto_text(m))}</td><td>'
                   f'{_e(seconds_text(m.get("fault_to_recovery_seconds")))}</td><td>'
                   f'{_e(value_text(m.get("acknowledged_writes")))}</td><td>{_e(lost_text(m))}'
                   f'</td><td>{_e(", ".join(s.undo_failures) or "none")}</td></tr>')
    out.append("</table>")
    for s in run.scenarios:
        out += _scenario(s)
    out.append("<h2>Environment</h2><table>")
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in
            sorted(run.environment.items())]
    out.append("</table></body></html>")
    return "\n".join(out)


def _scenario(s: ScenarioView) -> list[str]:
    m = s.measurements
    out = [f'<h3 id="{_e(s.name)}">{_e(s.name)}: <span class="{_e(s.outcome)}">'
           f"{_e(s.outcome)}</span></h3>", f"<p>{_e(s.title)}<br>{_e(s.reason)}<br>"
           f"RTO {_e(rto_text(m))} · fault to recovery "
           f"{_e(seconds_text(m.get('fault_to_recovery_seconds')))} · acknowledged writes "
           f"lost: {_e(lost_text(m))}</p>"]
    if s.undo_failures:
        out.append(f'<p class="failed">Undo failed (pending for drill recover): '
                   f'{_e(", ".join(s.undo_failures))}</p>')
    out += [chart(s), "<table><tr><th>check</th><th>verdict</th><th>evidence</th>"
            "<th>measurements</th></tr>"]
    for c in s.checks:
        measured = ", ".join(f"{k}={value_text(v)}"
                             for k, v in sorted((c.get("measurements") or {}).items()))
        out.append(f'<tr><td>{_e(c["check"])}</td><td class="{_e(c["verdict"])}">'
                   f'{_e(c["verdict"])}</td><td>{_e(c.get("summary", ""))}</td>'
                   f"<td>{_e(measured or '-')}</td></tr>")
    out.append("</table><table><tr><th>measurement</th><th>value</th></tr>")
    out += [f"<tr><td>{_e(k)}</td><td>{_e(value_text(v))}</td></tr>"
            for k, v in sorted(m.items())]
    out.append("</table>")
    return out


def write_html(run: RunView, bundle: Path) -> Path:
    path = bundle / "report.html"
    path.write_text(render(run))
    return path

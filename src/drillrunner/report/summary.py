"""summary.json: the machine-readable contract (field names are kept stable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drillrunner.report.claims import claim_rows
from drillrunner.report.view import RunView, ScenarioView

CONTRACT = ("rto_seconds", "rto_error_seconds", "acknowledged_writes", "lost_acknowledged_writes")


def summary(run: RunView) -> dict[str, Any]:
    rows = claim_rows(run)
    return {
        "run_id": run.run_id,
        "target": run.target,
        "outcome": run.outcome,
        "exit_code": run.exit_code,
        "signing": (run.signing or {}).get("fingerprint"),
        "started": run.started,
        "ended": run.ended,
        "environment": run.environment,
        "claims": {row.id: row.verdict.value for row in rows},
        "claims_untested": [row.id for row in rows if row.untested],
        "claims_detail": {row.id: row.detail() for row in rows},
        "scenarios": [_scenario(s) for s in run.scenarios],
    }


def _scenario(s: ScenarioView) -> dict[str, Any]:
    # The scenario's figures exactly as the engine journaled them; each check keeps its own.
    return {
        "name": s.name,
        "title": s.title,
        "outcome": s.outcome,
        "reason": s.reason,
        "claims": s.claims,
        "seconds": s.seconds,
        "undo_failures": s.undo_failures,
        "measurements": {**{k: None for k in CONTRACT}, **s.measurements},
        "checks": [
            {"name": c["check"], "verdict": c["verdict"], "summary": c.get("summary", ""),
             "measurements": c.get("measurements", {})}
            for c in s.checks
        ],
    }


def write_summary(run: RunView, bundle: Path) -> Path:
    path = bundle / "summary.json"
    path.write_text(json.dumps(summary(run), indent=2, default=str) + "\n")
    return path

"""summary.json: the machine-readable contract (field names are kept stable)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from drillrunner.report.claims import claim_rows
from drillrunner.report.view import RunView

CONTRACT = ("rto_seconds", "rto_error_seconds", "acknowledged_writes", "lost_acknowledged_writes")


def summary(run: RunView) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "target": run.target,
        "outcome": run.outcome,
        "started": run.started,
        "ended": run.ended,
        "environment": run.environment,
        "claims": {row.id: row.verdict.value for row in claim_rows(run)},
        "claims_untested": [row.id for row in claim_rows(run) if row.untested],
        "scenarios": [
            {
                "name": s.name,
                "title": s.title,
                "outcome": s.outcome,
                "reason": s.reason,
                "claims": s.claims,
                "measurements": {**{k: None for k in CONTRACT}, **s.measurements},
                "checks": [
                    {"name": c["check"], "verdict": c["verdict"], "summary": c["summary"]}
                    for c in s.checks
                ],
            }
            for s in run.scenarios
        ],
    }


def write_summary(run: RunView, bundle: Path) -> Path:
    path = bundle / "summary.json"
    path.write_text(json.dumps(summary(run), indent=2, default=str) + "\n")
    return path

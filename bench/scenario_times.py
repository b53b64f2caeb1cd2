"""Per scenario of an evidence bundle: wall time vs the inherent recovery time it measured.

Reads summary.json and journal.jsonl of a bundle (default: the newest reports/*/ holding a
summary.json) and prints, per scenario, its wall time (measurements.scenario_seconds), its
inherent recovery time (rto_seconds, else restore_seconds) and their ratio; then the whole
run's wall time (run-start to run-end in the journal, monotonic clock) against the sum of
the inherent recovery times.

    .venv/bin/python bench/scenario_times.py [BUNDLE_DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _common import ROOT, write_results
from drillrunner.evidence.events import Event


def newest_bundle(reports: Path) -> Path | None:
    bundles = [p for p in reports.glob("*/") if (p / "summary.json").is_file()]
    return max(bundles, key=lambda p: (p / "summary.json").stat().st_mtime, default=None)


def journal_events(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def inherent(m: dict[str, Any]) -> tuple[float | None, str | None]:
    """The recovery time the scenario itself measured: RTO, else a restore's duration."""
    for key in ("rto_seconds", "restore_seconds"):
        if isinstance(m.get(key), int | float):
            return float(m[key]), key
    for key, value in sorted(m.items()):
        if key.endswith("restore_seconds") and isinstance(value, int | float):
            return float(value), key
    return None, None


def fmt(x: float | None, unit: str = "s") -> str:
    return "-" if x is None else f"{x:.2f}{unit}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bundle", nargs="?", type=Path, help="default: newest reports/*/")
    args = ap.parse_args()
    bundle = args.bundle or newest_bundle(ROOT / "reports")
    if bundle is None or not (bundle / "summary.json").is_file():
        where = bundle or ROOT / "reports"
        print(f"no evidence bundle with a summary.json in {where}: run `make drill` (or "
              "`drill run ...`) first, or pass a bundle folder")
        return 2
    summary = json.loads((bundle / "summary.json").read_text())
    events = journal_events(bundle / "journal.jsonl")
    ends = {e.get("scenario"): e for e in events if e.get("event") == Event.SCENARIO_END}

    rows = []
    for s in summary.get("scenarios", []):
        m = s.get("measurements") or {}
        wall = m.get("scenario_seconds")
        if not isinstance(wall, int | float):  # older bundles: the journal's scenario-end
            wall = (ends.get(s["name"]) or {}).get("seconds")
        value, key = inherent(m)
        rows.append({
            "scenario": s["name"], "outcome": s.get("outcome"),
            "wall_seconds": round(float(wall), 3) if isinstance(wall, int | float) else None,
            "inherent_seconds": round(value, 3) if value is not None else None,
            "inherent_from": key,
            "restore_seconds": m.get("restore_seconds"),
            "ratio": round(float(wall) / value, 2)
            if isinstance(wall, int | float) and value else None,
        })

    bounds = (Event.RUN_START, Event.RUN_END)
    monos = {e["event"]: e["mono"] for e in events if e.get("event") in bounds}
    if Event.RUN_START in monos and Event.RUN_END in monos:
        run_wall = monos[Event.RUN_END] - monos[Event.RUN_START]
        run_from = "journal run-start..run-end"
    elif events:
        run_wall, run_from = events[-1]["mono"] - events[0]["mono"], "journal first..last event"
    else:
        run_wall, run_from = None, None
    inherent_sum = sum(r["inherent_seconds"] or 0.0 for r in rows)
    wall_sum = sum(r["wall_seconds"] or 0.0 for r in rows)

    print(f"bundle {bundle} (run {summary.get('run_id')}, outcome {summary.get('outcome')})\n")
    print(f"{'scenario':44} {'outcome':16} {'wall':>9} {'inherent':>9} {'from':>15} "
          f"{'wall/inh':>9} {'restore':>8}")
    for r in rows:
        print(f"{r['scenario']:44} {r['outcome'] or '-':16} {fmt(r['wall_seconds']):>9} "
              f"{fmt(r['inherent_seconds']):>9} {r['inherent_from'] or '-':>15} "
              f"{fmt(r['ratio'], 'x'):>9} {fmt(r['restore_seconds']):>8}")
    print(f"\nwhole run: wall {fmt(run_wall)} ({run_from}); sum of scenario walls "
          f"{wall_sum:.2f}s; sum of inherent recovery times {inherent_sum:.2f}s"
          + (f"; wall/inherent {run_wall / inherent_sum:.1f}x"
             if run_wall and inherent_sum else ""))
    write_results("scenario_times", {
        "bundle": str(bundle), "run_id": summary.get("run_id"),
        "outcome": summary.get("outcome"), "scenarios": rows,
        "run_wall_seconds": round(run_wall, 3) if run_wall is not None else None,
        "run_wall_from": run_from,
        "sum_scenario_wall_seconds": round(wall_sum, 3),
        "sum_inherent_seconds": round(inherent_sum, 3),
        "run_wall_over_inherent": round(run_wall / inherent_sum, 2)
        if run_wall and inherent_sum else None,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

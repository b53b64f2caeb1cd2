"""Run every benchmark in bench/ and print a table of the headline figures.

Each benchmark is its own process (its output is shown as it runs) and writes
bench/results/<name>.json; this table is read back from those files.

    .venv/bin/python bench/run_all.py [--only NAME ...] [--skip NAME ...] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import BENCH, RESULTS, ROOT, VENV_BIN, write_results

Row = tuple[str, str, str]  # figure, value, goal / verdict


def _s(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f} s"


def _goal(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "-"}[met]


def help_rows(r: dict[str, Any]) -> list[Row]:
    res = r["results_seconds"]
    d, c = res["drill --help"], res.get("chaos --help")
    plain = res.get("drill --help, TYPER_USE_RICH=0")
    rows = [("drill --help mean ± stdev (min)",
             f"{_s(d['mean'])} ± {d['stdev']:.3f} ({d['min']:.3f})", "")]
    if c:
        rows.append(("chaos --help mean ± stdev (min)",
                     f"{_s(c['mean'])} ± {c['stdev']:.3f} ({c['min']:.3f})", ""))
        rows.append(("drill / chaos (mean)", f"{r['drill_over_chaos_mean']:.2f}x",
                     "goal <= 1.00x: " + _goal(r["drill_no_slower_than_chaos"])))
    if plain:
        rows.append(("drill --help, TYPER_USE_RICH=0 (what-if)", _s(plain["mean"]), ""))
    return rows


def rto_rows(r: dict[str, Any]) -> list[Row]:
    """One block per outage case (a frozen Redis, a stalled synchronous commit)."""
    rows: list[Row] = []
    for name, c in (r.get("cases") or {"": r}).items():
        e = c["error_s"]
        label = f"{name}: " if name else ""
        rows += [
            (f"{label}RTO - true outage, mean", f"{(e['mean'] or 0) * 1000:+.2f} ms", ""),
            (f"{label}max |error| over {e['n']} reps",
             f"{(c['max_abs_error_s'] or 0) * 1000:.2f} ms",
             "goal <= 20 ms: " + _goal(c["goal_met"])),
            (f"{label}error bar drill reports, mean",
             f"{(c['reported_error_bar_s']['mean'] or 0) * 1000:.1f} ms",
             f"true outage inside: {c['true_within_error_bar']}/{e['n']}"),
        ]
    return rows


def engine_rows(r: dict[str, Any]) -> list[Row]:
    d = r["drill"]["per_scenario_s"]
    rows = [(f"drill engine per no-op scenario (n={d['n']})",
             f"mean {d['mean'] * 1000:.1f} ms, median {d['median'] * 1000:.1f} ms", ""),
            ("drill start-up + scenario (process est.)",
             _s(r["drill_per_scenario_plus_startup_s"]), "")]
    if r.get("chaos"):
        c = r["chaos"]["chaos_run_process_s"]
        rows.append(("chaos run per experiment (process)",
                     f"mean {c['mean'] * 1000:.1f} ms, median {c['median'] * 1000:.1f} ms",
                     f"reference {r['chaos_reference_s']} s"))
    return rows


def stack_rows(r: dict[str, Any]) -> list[Row]:
    if not r.get("ok"):
        failed = [s["command"] for s in r.get("steps", {}).values() if not s.get("ok")]
        return [("drill stack up", "FAILED", r.get("error") or f"failed: {failed}")]
    return [("stack up, first (initdb...)", _s(r["first_up_s"], 2),
             "goal <= 30 s: " + _goal(r["first_up_s"] <= r["goal_seconds"])),
            ("stack up, restart with data", _s(r["restart_up_s"], 2),
             "goal <= 30 s: " + _goal(r["restart_up_s"] <= r["goal_seconds"])),
            ("stack down", _s(r["down_s"], 2), "")]


def scenario_rows(r: dict[str, Any]) -> list[Row]:
    return [(f"run {r['run_id']}: wall vs inherent recovery",
             f"{_s(r['run_wall_seconds'], 1)} vs {_s(r['sum_inherent_seconds'], 1)}",
             f"{r['run_wall_over_inherent']}x" if r["run_wall_over_inherent"] else "")]


BENCHMARKS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "help_time": help_rows,
    "rto_accuracy": rto_rows,
    "engine_overhead": engine_rows,
    "stack_up": stack_rows,
    "scenario_times": scenario_rows,
}
SKIPPED_RC = {"scenario_times": 2}  # no evidence bundle yet: nothing to measure


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=list(BENCHMARKS), default=None)
    ap.add_argument("--skip", nargs="*", choices=list(BENCHMARKS), default=[])
    ap.add_argument("--bundle", help="evidence bundle for scenario_times (default: newest "
                    "reports/*/)")
    args = ap.parse_args()
    names = [n for n in (args.only or BENCHMARKS) if n not in args.skip]

    status: dict[str, dict[str, Any]] = {}
    for name in names:
        print(f"\n===== {name} =====", flush=True)
        stale = RESULTS / f"{name}.json"
        before = stale.stat().st_mtime if stale.exists() else None
        t0 = time.perf_counter()
        extra = [args.bundle] if name == "scenario_times" and args.bundle else []
        rc = subprocess.run([str(VENV_BIN / "python"), str(BENCH / f"{name}.py"), *extra],
                            cwd=ROOT, check=False).returncode
        fresh = stale.exists() and stale.stat().st_mtime != before
        state = ("skipped" if rc == SKIPPED_RC.get(name) else "ok" if rc == 0
                 else f"exit {rc}")
        status[name] = {"exit_code": rc, "state": state, "fresh_results": fresh,
                        "seconds": round(time.perf_counter() - t0, 1)}

    print("\n" + "=" * 100)
    print(f"{'benchmark':16} {'figure':42} {'value':32} goal / note")
    print("-" * 100)
    table = []
    for name in names:
        st = status[name]
        rows: list[Row]
        if not st["fresh_results"]:
            rows = [("(no results)", st["state"], "see its output above")]
        else:
            data = json.loads((RESULTS / f"{name}.json").read_text())
            try:
                rows = BENCHMARKS[name](data)
            except (KeyError, TypeError) as exc:
                rows = [("(unreadable results)", st["state"], f"{type(exc).__name__}: {exc}")]
            if st["state"] not in ("ok",):
                rows.append(("(benchmark status)", st["state"], ""))
        for i, (figure, value, note) in enumerate(rows):
            print(f"{name if i == 0 else '':16} {figure:42} {value:32} {note}")
            table.append({"benchmark": name, "figure": figure, "value": value, "note": note})
    print("=" * 100)
    write_results("run_all", {"status": status, "table": table})
    failed = [n for n, st in status.items() if st["state"] not in ("ok", "skipped")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Wall time of `drill --help` beside Chaos Toolkit's `chaos --help`, measured in one run.

Uses hyperfine (`-N`, no shell) when it is installed, else a time.perf_counter loop. Also
lists `python -X importtime` top offenders of drill's help path.

    .venv/bin/python bench/help_time.py [--runs 20] [--warmup 3] [--no-install]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import CHAOS_VENV, ROOT, VENV_BIN, ms, summary, write_results

GOAL_SECONDS = 0.126  # chaos --help as measured when the goal was set


def ensure_chaos(install: bool) -> Path | None:
    """bench/.venv-chaos/bin/chaos, installing chaostoolkit into its own venv if missing."""
    chaos = CHAOS_VENV / "bin" / "chaos"
    if chaos.exists() or not install:
        return chaos if chaos.exists() else None
    python3 = shutil.which("python3") or sys.executable
    print(f"installing chaostoolkit into {CHAOS_VENV.relative_to(ROOT)} ...", flush=True)
    subprocess.run([python3, "-m", "venv", str(CHAOS_VENV)], check=True)
    subprocess.run([str(CHAOS_VENV / "bin" / "pip"), "install", "-q", "chaostoolkit"],
                   check=True)
    return chaos if chaos.exists() else None


def with_hyperfine(commands: dict[str, list[str]], runs: int, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hf.json"
        argv = ["hyperfine", "-N", "--style", "basic", "--warmup", str(warmup), "--runs",
                str(runs), "--export-json", str(out)]
        for name, cmd in commands.items():
            argv += ["--command-name", name, subprocess.list2cmdline(cmd)]
        subprocess.run(argv, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        data = json.loads(out.read_text())
    return {r["command"]: {**summary(r["times"]), "stdev": round(r["stddev"] or 0.0, 6)}
            for r in data["results"]}


def with_loop(commands: dict[str, list[str]], runs: int, warmup: int) -> dict[str, Any]:
    """Interleaved runs (a, b, a, b...) so load changes hit every command alike."""
    times: dict[str, list[float]] = {n: [] for n in commands}
    for i in range(warmup + runs):
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return {n: summary(t) for n, t in times.items()}


def importtime(argv: list[str], top: int = 15, env: dict[str, str] | None = None
               ) -> dict[str, Any]:
    """`python -X importtime` of the help path: the slowest modules by self and by
    cumulative time, and the top-level imports (what the process itself imported)."""
    proc = subprocess.run([str(VENV_BIN / "python"), "-X", "importtime", *argv], cwd=ROOT,
                          capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})})
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        parts = line[len("import time:"):].split("|")
        self_us, cum_us, raw = int(parts[0]), int(parts[1]), parts[2]
        depth = (len(raw) - len(raw.lstrip(" ")) - 1) // 2
        rows.append({"module": raw.strip(), "self_ms": self_us / 1000,
                     "cumulative_ms": cum_us / 1000, "depth": depth})
    by_self = sorted(rows, key=lambda r: -r["self_ms"])[:top]
    top_level = sorted((r for r in rows if r["depth"] == 0), key=lambda r: -r["cumulative_ms"])
    packages: dict[str, float] = {}
    for r in rows:
        pkg = r["module"].split(".")[0]
        packages[pkg] = packages.get(pkg, 0.0) + r["self_ms"]
    return {
        "total_import_ms": round(sum(r["self_ms"] for r in rows), 1),
        "modules_imported": len(rows),
        "by_package_self_ms": {k: round(v, 1) for k, v in
                               sorted(packages.items(), key=lambda kv: -kv[1])[:top]},
        "top_level": [{k: r[k] for k in ("module", "cumulative_ms")} for r in top_level[:top]],
        "top_self": [{k: r[k] for k in ("module", "self_ms", "cumulative_ms")} for r in by_self],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-install", action="store_true", help="do not install chaostoolkit")
    ap.add_argument("--loop", action="store_true", help="own loop even if hyperfine exists")
    args = ap.parse_args()

    drill = VENV_BIN / "drill"
    commands: dict[str, list[str]] = {
        "drill --help": [str(drill), "--help"],
        # What-if without editing src/: Typer's plain (click) help instead of rich's, the
        # same as rich_markup_mode=None on the apps.
        "drill --help, TYPER_USE_RICH=0": ["env", "TYPER_USE_RICH=0", str(drill), "--help"],
        "python -c pass (interpreter floor)": [str(VENV_BIN / "python"), "-c", "pass"],
    }
    chaos = ensure_chaos(not args.no_install)
    if chaos is not None:
        commands["chaos --help"] = [str(chaos), "--help"]
    else:
        print("chaos is not installed (--no-install): measuring drill alone")

    tool = "hyperfine" if shutil.which("hyperfine") and not args.loop else "perf_counter loop"
    runner = with_hyperfine if tool == "hyperfine" else with_loop
    print(f"timing with {tool}: {args.warmup} warm-ups, {args.runs} runs each", flush=True)
    results = runner(commands, args.runs, args.warmup)

    print(f"\n{'command':38} {'mean':>10} {'stdev':>10} {'min':>10} {'median':>10}")
    for name, r in results.items():
        print(f"{name:38} {ms(r['mean']):>10} {ms(r['stdev']):>10} {ms(r['min']):>10} "
              f"{ms(r['median']):>10}")
    d, c = results["drill --help"], results.get("chaos --help")
    verdict: dict[str, Any] = {}
    if c:
        verdict = {
            "drill_over_chaos_mean": round(d["mean"] / c["mean"], 3),
            "drill_over_chaos_min": round(d["min"] / c["min"], 3),
            "drill_no_slower_than_chaos": d["mean"] <= c["mean"],
        }
        print(f"\ndrill/chaos: {verdict['drill_over_chaos_mean']:.2f}x by mean, "
              f"{verdict['drill_over_chaos_min']:.2f}x by min; goal: drill no slower than "
              f"chaos ({'met' if verdict['drill_no_slower_than_chaos'] else 'NOT met'})")

    imp = importtime([str(drill), "--help"])
    plain = importtime([str(drill), "--help"], env={"TYPER_USE_RICH": "0"})
    imp["modules_imported_with_TYPER_USE_RICH_0"] = plain["modules_imported"]
    imp["total_import_ms_with_TYPER_USE_RICH_0"] = plain["total_import_ms"]
    print(f"\nimporttime of `drill --help`: {imp['modules_imported']} modules, "
          f"{imp['total_import_ms']:.0f} ms of imports (inflated by -X importtime itself)")
    print("  by package (self time):")
    for pkg, t in imp["by_package_self_ms"].items():
        print(f"    {pkg:30} {t:8.1f} ms")
    print("  top-level imports (cumulative):")
    for r in imp["top_level"][:8]:
        print(f"    {r['module']:30} {r['cumulative_ms']:8.1f} ms")
    print("  slowest modules (self):")
    for r in imp["top_self"][:10]:
        print(f"    {r['module']:40} {r['self_ms']:8.1f} ms")
    print(f"  with TYPER_USE_RICH=0: {plain['modules_imported']} modules, "
          f"{plain['total_import_ms']:.0f} ms of imports")

    write_results("help_time", {
        "tool": tool, "runs": args.runs, "warmup": args.warmup,
        "goal": f"drill --help no slower than chaos --help (chaos was {GOAL_SECONDS}s)",
        "results_seconds": results, **verdict, "importtime": imp,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""drill's own overhead per scenario: the engine running steps that do nothing measurable.

The scenario has a steady-state probe returning True, a fault that only journals its undo,
the undo doing nothing, a check returning PASS, and no workload (bench/noop_actions.py).
Each repetition loads the YAML (drillrunner.model.loader.load plus the argument binding of
check_actions) and runs it with drillrunner.engine.runner.Runner into a fresh Journal
(fsync'd per event) in a temp folder. For comparison, Chaos Toolkit runs an equivalent
experiment (a python probe and action calling no-ops) as a whole `chaos run` process.

    .venv/bin/python bench/engine_overhead.py [--runs 50] [--chaos-runs 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import noop_actions
from _common import CHAOS_VENV, VENV_BIN, ms, summary, write_results
from drillrunner.core.actions import Catalog
from drillrunner.core.verdicts import Outcome
from drillrunner.engine import checks
from drillrunner.engine.runner import Phase, Runner
from drillrunner.evidence.journal import Journal, read
from drillrunner.model.loader import check_actions, load

SCENARIO = """\
apiVersion: drill/v1
kind: Scenario
metadata: {name: noop, title: Nothing measurable happens, claims: [C15-dr-drills]}
slo: {rto: 5s}
steady_state:
  - probe: noop.ready
faults:
  - noop.fault: {}
recovery: {timeout: 5s, stable: 500ms, rto_from: noop.fault}
verify:
  - check: noop.pass
"""

STABLE = 0.5  # the recovery must hold this long: a wait of the scenario, subtracted below

CHAOS_EXPERIMENT: dict[str, Any] = {
    "version": "1.0.0",
    "title": "noop",
    "description": "Nothing measurable happens",
    "steady-state-hypothesis": {
        "title": "always holds",
        "probes": [{
            "type": "probe", "name": "ready", "tolerance": True,
            "provider": {"type": "python", "module": "os.path", "func": "exists",
                         "arguments": {"path": "/"}},
        }],
    },
    "method": [{"type": "action", "name": "fault",
                "provider": {"type": "python", "module": "os", "func": "getpid"}}],
    "rollbacks": [{"type": "action", "name": "undo",
                   "provider": {"type": "python", "module": "os", "func": "getpid"}}],
}


class Quiet:
    def phase(self, scenario: str, phase: Phase, detail: str = "") -> None:
        pass


def time_drill(runs: int, tmp: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    catalog = Catalog.from_modules([checks, noop_actions])
    catalog_s = time.perf_counter() - t0
    path = tmp / "noop.yaml"
    path.write_text(SCENARIO)
    target = noop_actions.NoopTarget()
    load_t, run_t, total_t, events = [], [], [], 0
    for i in range(runs + 1):  # the first run warms caches and is not counted
        t0 = time.perf_counter()
        doc, problems = load(path)
        assert doc is not None and not problems, problems
        assert not check_actions(doc, catalog)
        t1 = time.perf_counter()
        journal = Journal(tmp / f"run-{i}" / "journal.jsonl")
        runner = Runner(target, catalog, journal, Quiet())  # type: ignore[arg-type]
        with runner.signals():
            result = runner.run_scenario(doc)
        journal.close()
        t2 = time.perf_counter()
        if result.outcome is not Outcome.PASSED:
            raise RuntimeError(f"the no-op scenario did not pass: {result.reason}")
        events = sum(1 for _ in read(journal.path))
        if i:  # the stable window is the scenario's own wait, not the engine's overhead
            load_t.append(t1 - t0)
            run_t.append(t2 - t1 - STABLE)
            total_t.append(t2 - t0 - STABLE)
    # The journal's share: one fsync'd, hash-chained line per event.
    journal = Journal(tmp / "appends" / "journal.jsonl")
    appends = []
    for _ in range(200):
        t0 = time.perf_counter()
        journal.append("bench", scenario="noop", value=True)
        appends.append(time.perf_counter() - t0)
    journal.close()
    return {
        "catalog_build_s": round(catalog_s, 6),
        "journal_events_per_scenario": events,
        "load_and_bind_s": summary(load_t),
        "run_scenario_s": summary(run_t),
        "per_scenario_s": summary(total_t),
        "journal_append_s": summary(appends),
    }


def time_chaos(runs: int, tmp: Path) -> dict[str, Any] | None:
    chaos = CHAOS_VENV / "bin" / "chaos"
    if not chaos.exists():
        return None
    exp = tmp / "exp.json"
    exp.write_text(json.dumps(CHAOS_EXPERIMENT, indent=2))
    # --no-version-check: no network round trip to PyPI; settings in the temp folder.
    base = [str(chaos), "--no-version-check", "--settings", str(tmp / "settings.yaml")]
    argv = [*base, "run", "--no-verify-tls", "--journal-path", str(tmp / "journal.json"),
            str(exp)]
    help_argv = [str(chaos), "--help"]
    run_t, help_t = [], []
    for i in range(runs + 2):  # two warm-ups
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, check=False)
        t1 = time.perf_counter()
        subprocess.run(help_argv, cwd=tmp, capture_output=True, check=True)
        t2 = time.perf_counter()
        if proc.returncode != 0:
            raise RuntimeError(f"chaos run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        if i >= 2:
            run_t.append(t1 - t0)
            help_t.append(t2 - t1)
    status = json.loads((tmp / "journal.json").read_text()).get("status")
    return {"command": " ".join(argv[:1] + argv[1:]), "experiment_status": status,
            "chaos_run_process_s": summary(run_t), "chaos_help_process_s": summary(help_t)}


def time_drill_process(runs: int, scenario: Path) -> dict[str, Any]:
    """The start-up a `drill run` process adds: `drill validate` of the same scenario imports
    the CLI, pydantic, YAML and the service catalog, then rejects the noop.* names (exit 2:
    they are not in drill's catalog). The whole process is timed."""
    t = []
    for i in range(runs + 2):
        t0 = time.perf_counter()
        proc = subprocess.run([str(VENV_BIN / "drill"), "validate", str(scenario)],
                              capture_output=True, text=True, check=False)
        if proc.returncode not in (0, 2) or "Traceback" in proc.stderr:
            raise RuntimeError(f"drill validate failed ({proc.returncode}): {proc.stderr[-800:]}")
        if i >= 2:
            t.append(time.perf_counter() - t0)
    return summary(t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--chaos-runs", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="drill-bench-engine-") as tmp:
        drill = time_drill(args.runs, Path(tmp))
        print(f"drill engine, {args.runs} no-op scenarios ({drill['journal_events_per_scenario']}"
              f" journal events each):")
        for key in ("load_and_bind_s", "run_scenario_s", "per_scenario_s", "journal_append_s"):
            s = drill[key]
            print(f"  {key:22} mean {ms(s['mean']):>10}  median {ms(s['median']):>10}  "
                  f"min {ms(s['min']):>10}  max {ms(s['max']):>10}")
        print(f"  catalog build (once)   {ms(drill['catalog_build_s'])}")
        startup = time_drill_process(10, Path(tmp) / "noop.yaml")
        print(f"  drill process start-up (`drill validate` of it, 10 runs): "
              f"mean {ms(startup['mean'])}")
        chaos_dir = Path(tmp) / "chaos"
        chaos_dir.mkdir()
        chaos = time_chaos(args.chaos_runs, chaos_dir)
    if chaos:
        c = chaos["chaos_run_process_s"]
        h = chaos["chaos_help_process_s"]
        print(f"\nchaos run (whole process, {args.chaos_runs} runs, status "
              f"{chaos['experiment_status']}): mean {ms(c['mean'])}  median {ms(c['median'])}  "
              f"min {ms(c['min'])}")
        print(f"chaos --help in the same loop: mean {ms(h['mean'])}  (nothing subtracted)")
    else:
        print("\nchaos is not installed (run bench/help_time.py to install it): not compared")
    d = drill["per_scenario_s"]["mean"]
    print(f"\ndrill per scenario (in-process): {ms(d)}; + process start-up ≈ "
          f"{ms(d + startup['mean'])} (compare with chaos run)")
    write_results("engine_overhead", {
        "runs": args.runs, "drill": drill, "drill_process_startup_s": startup,
        "drill_per_scenario_plus_startup_s": round(d + startup["mean"], 6),
        "chaos": chaos, "chaos_reference_s": 0.18,
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`drill validate` on mutated valid files: cases per second, the slowest case, any crash.

Each case is one to three mutations (tests/fuzz_inputs.py) of a file of scenarios/ or
drills/: deleted, duplicated, retyped or unknown keys, deep nesting, alias bombs, invalid
UTF-8, files over 1 MiB, random bytes. A case fails when validate raises, exits with other
than 0 or 2, prints a traceback, or takes more than --max-seconds.

    .venv/bin/python bench/fuzz_validate.py [--cases 10000] [--seed 1] [--max-seconds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path

from _common import ROOT, summary, write_results

sys.path.insert(0, str(ROOT))
from tests.fuzz_inputs import mutated

from drillrunner.cli import main
from drillrunner.services.registry import full_catalog


def one(path: Path) -> tuple[int | None, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code: int | None = main(["validate", str(path)])
        except BaseException:  # a crash is the finding: record it, go on
            return None, traceback.format_exc(limit=6)
    return code, err.getvalue()


def run(cases: int, seed: int, max_seconds: float, keep: Path) -> dict[str, object]:
    # The catalog of actions is the same for every case: load it once, so that the figure
    # is the loader's and validator's cost, not the re-import of every service module.
    from drillrunner.cli import catalog_cmds

    catalog = full_catalog()
    catalog_cmds._catalog = lambda: catalog  # type: ignore[assignment]
    rng = random.Random(seed)
    times: list[float] = []
    failures: list[dict[str, object]] = []
    codes = {0: 0, 2: 0}
    slowest = (0.0, -1)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.yaml"
        for i in range(cases):
            data = mutated(rng)
            path.write_bytes(data)
            t0 = time.monotonic()
            code, text = one(path)
            dt = time.monotonic() - t0
            times.append(dt)
            slowest = max(slowest, (dt, i))
            bad = (code not in (0, 2) or "Traceback" in text or dt > max_seconds
                   or (code == 2 and not text.strip()))
            if code in codes:
                codes[code] += 1  # type: ignore[index]
            if bad:
                keep.mkdir(parents=True, exist_ok=True)
                saved = keep / f"case-{seed}-{i}.yaml"
                saved.write_bytes(data)
                failures.append({"case": i, "exit": code, "seconds": round(dt, 3),
                                 "file": str(saved), "output": text[-600:]})
                print(f"FAIL case {i}: exit {code}, {dt:.2f}s, saved {saved}\n{text[-600:]}")
            if (i + 1) % 1000 == 0:
                el = time.monotonic() - started
                print(f"{i + 1} cases, {(i + 1) / el:.0f}/s, slowest {slowest[0]:.3f}s "
                      f"(case {slowest[1]}), {len(failures)} failure(s)", flush=True)
    wall = time.monotonic() - started
    return {"cases": cases, "seed": seed, "wall_seconds": round(wall, 2),
            "cases_per_second": round(cases / wall, 1), "exit_codes": codes,
            "seconds_per_case": summary(times), "slowest_case": slowest[1],
            "max_seconds_allowed": max_seconds, "failures": failures}


def main_() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-seconds", type=float, default=5.0)
    ap.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "drill-fuzz",
                    help="where failing cases are saved")
    args = ap.parse_args()
    result = run(args.cases, args.seed, args.max_seconds, args.keep)
    print(f"\n{result['cases']} cases in {result['wall_seconds']}s: "
          f"{result['cases_per_second']} cases/s; max "
          f"{result['seconds_per_case']['max']}s per case; "  # type: ignore[index]
          f"{len(result['failures'])} failure(s)")  # type: ignore[arg-type]
    write_results("fuzz_validate", result)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main_())

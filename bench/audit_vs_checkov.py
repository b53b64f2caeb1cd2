"""`drill audit` beside Checkov (`checkov --framework kubernetes secrets`) on deploy/k8s, on
deliberately broken manifests and on the whole audit corpus: what each catches, false
positives, wall times.

Corpus (tests/unit/audit_corpus/, the `# finding: RULE` marks of tests/unit/test_audit_corpus.py):
per file and tool, caught = marked lines reported, missed = marked lines not reported,
false positives = findings on an unmarked line (every finding of a compliant file). drill
counts a finding of the marked rule on that exact line; Checkov, which reports a resource's
line range (its secrets scanner: the line), counts a failed check whose name is about the
marked rule (RULE_TOPICS) and whose range holds the line. Checkov's checks about topics no
rule of the corpus covers (image tags, seccomp, service accounts...) are counted apart
("other"), not as false positives; those about a covered topic that match no mark are.

Cases (tests/unit/audit_fixtures/): emptyDir for Redis data, an Ingress without TLS, egress
to 0.0.0.0/0, a literal password in env, and a compliant manifest using secretKeyRef. A tool
"catches" a case when it reports a finding about that very problem: for drill, the expected
rule; for Checkov, a failed check whose name is about it (regex below; every failed check is
listed in the JSON so the reader can judge). On the compliant manifest every failure is a
false positive.

    .venv/bin/python bench/audit_vs_checkov.py [--runs 10] [--checkov-runs 3] [--no-install]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import BENCH, ROOT, VENV_BIN, summary, write_results

CHECKOV_VENV = BENCH / ".venv-checkov"
FIXTURES = ROOT / "tests" / "unit" / "audit_fixtures"
CORPUS = ROOT / "tests" / "unit" / "audit_corpus"
DEPLOY = ROOT / "deploy" / "k8s"
GOAL_SECONDS = 1.0  # drill audit of the whole deploy/k8s, process wall time

# case -> (fixture, drill rule expected, Checkov check names that would be about it)
CASES: dict[str, tuple[str, str | None, str | None]] = {
    "emptyDir for Redis data": ("emptydir-data.yaml", "data-on-pvc",
                                r"emptyDir|persist|volume claim"),
    "Ingress without TLS": ("ingress-no-tls.yaml", "ingress-tls", r"TLS|HTTPS|SSL"),
    "egress to 0.0.0.0/0": ("egress-any.yaml", "egress-restricted", r"egress|0\.0\.0\.0|CIDR"),
    "literal password in env": ("literal-password.yaml", "no-plaintext-credentials",
                                r"password|credential|plain.?text|hard.?coded"),
    "compliant (secretKeyRef)": ("compliant-secretkeyref.yaml", None, None),
}


# drill rule -> the names of Checkov checks about the same problem (None: Checkov has none).
RULE_TOPICS: dict[str, str | None] = {
    "no-plaintext-credentials": r"secret|password|credential|plain.?text|hard.?coded"
                                r"|private key|basic auth|json web token|entropy|api key",
    "probes-declared": r"liveness probe|readiness probe",
    "resource-requests": r"requests should be set",
    "dependency-aware-probes": r"liveness probe|readiness probe",
    "data-on-pvc": r"emptyDir|persist|volume claim|hostPath",
    "ingress-tls": r"TLS|HTTPS|SSL",
    "egress-restricted": r"egress|0\.0\.0\.0|CIDR",
    "non-root": r"root containers|privileged containers",
}


def ensure_checkov(install: bool) -> Path | None:
    checkov = CHECKOV_VENV / "bin" / "checkov"
    if checkov.exists() or not install:
        return checkov if checkov.exists() else None
    python3 = shutil.which("python3") or sys.executable
    print(f"installing checkov into {CHECKOV_VENV.relative_to(ROOT)} ...", flush=True)
    subprocess.run([python3, "-m", "venv", str(CHECKOV_VENV)], check=True)
    subprocess.run([str(CHECKOV_VENV / "bin" / "pip"), "install", "-q", "checkov"], check=True)
    return checkov if checkov.exists() else None


def checkov_env() -> dict[str, str]:
    # Offline and quiet: no guideline download from Prisma Cloud (it would only add timeouts).
    return {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}


def run_checkov(checkov: Path, folder: Path, frameworks: tuple[str, ...] = ("kubernetes",)
                ) -> tuple[float, list[dict[str, Any]]]:
    t0 = time.perf_counter()
    proc = subprocess.run([str(checkov), "-d", str(folder), "--framework", *frameworks,
                           "-o", "json", "--quiet", "--skip-download"], capture_output=True,
                          text=True, env=checkov_env(), check=False)
    wall = time.perf_counter() - t0
    out = proc.stdout.strip()
    data: Any = json.loads(out) if out.startswith(("{", "[")) else {}
    reports = data if isinstance(data, list) else [data]
    failed = [{"id": c["check_id"], "name": c.get("check_name") or c["check_id"],
               "resource": c["resource"], "file": c["file_path"],
               "lines": c.get("file_line_range") or [0, 0]}
              for r in reports if isinstance(r, dict)
              for c in r.get("results", {}).get("failed_checks", [])]
    return wall, failed


def run_drill(folder: Path) -> tuple[float, int, list[dict[str, Any]]]:
    t0 = time.perf_counter()
    proc = subprocess.run([str(VENV_BIN / "drill"), "audit", str(folder), "--format", "json"],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    wall = time.perf_counter() - t0
    findings = json.loads(proc.stdout)["findings"] if proc.stdout.startswith("{") else []
    return wall, proc.returncode, findings


def corpus_marks(path: Path) -> tuple[set[tuple[str, int]], set[str]]:
    sys.path.insert(0, str(ROOT))
    from tests.unit.test_audit_corpus import marks

    return marks(path)


def _tally(expected: set[tuple[str, int]], hits: set[tuple[str, int]], fps: int
           ) -> dict[str, int]:
    return {"marked": len(expected), "caught": len(hits), "missed": len(expected - hits),
            "false_positives": fps}


def corpus_rows(checkov: Path | None) -> dict[str, Any]:
    """Per corpus file, per tool: caught / missed / false positives (module docstring)."""
    files = sorted(CORPUS.rglob("*.yaml"))
    # Each file is an application of its own (as the corpus harness audits it): audited
    # together, one file's backup job or sentinels would count for another's.
    drill_found = [f for path in files for f in run_drill(path)[2]]
    c_wall, c_found = (run_checkov(checkov, CORPUS, ("kubernetes", "secrets")) if checkov
                       else (None, []))
    rows: dict[str, Any] = {}
    for path in files:
        rel = str(path.relative_to(CORPUS))
        expected, ignored = corpus_marks(path)
        got = {(f["rule"], f["line"]) for f in drill_found
               if Path(f["file"]).resolve() == path.resolve() and f["rule"] not in ignored}
        row: dict[str, Any] = {"drill": _tally(expected, got & expected, len(got - expected))}
        if checkov:
            mine = [f for f in c_found if str(f["file"]).lstrip("/") == rel]
            hits: set[tuple[str, int]] = set()
            fps, other = [], []
            for f in mine:
                lo, hi = (f["lines"] + [0, 0])[:2]
                about = [r for r, pat in RULE_TOPICS.items()
                         if pat and re.search(pat, f["name"], re.I)]
                matched = {(r, n) for r, n in expected if r in about and lo <= n <= hi}
                hits |= matched
                if not about:
                    other.append(f"{f['id']} {f['name']}")
                elif not matched:
                    fps.append(f"{f['id']} {f['name']} (lines {lo}-{hi})")
            row["checkov"] = {**_tally(expected, hits, len(fps)), "false_positive_checks": fps,
                              "other_failed_checks": len(other)}
        rows[rel] = row
    totals = {tool: {k: sum(r[tool][k] for r in rows.values())
                     for k in ("marked", "caught", "missed", "false_positives")}
              for tool in ("drill", "checkov") if all(tool in r for r in rows.values())}
    return {"files": len(files), "checkov_seconds": c_wall, "rows": rows, "totals": totals}


def print_corpus(corpus: dict[str, Any]) -> None:
    print(f"\ncorpus: {corpus['files']} files (caught/missed/false positives)")
    print(f"{'file':52} {'drill':>10} {'checkov':>10}")
    for rel, row in corpus["rows"].items():
        cells = [f"{r['caught']}/{r['missed']}/{r['false_positives']}" if r else "n/a"
                 for r in (row.get("drill"), row.get("checkov"))]
        print(f"{rel:52} {cells[0]:>10} {cells[1]:>10}")
    for tool, t in corpus["totals"].items():
        print(f"  total {tool:8}: {t['caught']}/{t['marked']} caught, {t['missed']} missed, "
              f"{t['false_positives']} false positives")


def in_process_seconds(folder: Path, runs: int) -> dict[str, Any]:
    """Load + every rule, without the interpreter's start-up."""
    sys.path.insert(0, str(ROOT / "src"))
    from drillrunner.audit import audit_paths

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        audit_paths([str(folder)])
        times.append(time.perf_counter() - t0)
    return summary(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--checkov-runs", type=int, default=3)
    ap.add_argument("--no-install", action="store_true")
    args = ap.parse_args()
    checkov = ensure_checkov(not args.no_install)
    version = (subprocess.run([str(checkov), "--version"], capture_output=True, text=True,
                              check=False, env=checkov_env()).stdout.strip()
               if checkov else None)
    files = sorted(p.name for p in DEPLOY.rglob("*.yaml"))

    drill_times = [run_drill(DEPLOY)[0] for _ in range(args.runs)]
    # The process floor: one small file (interpreter, typer and its pydantic adapters).
    floor_times = [run_drill(FIXTURES / "egress-any.yaml")[0] for _ in range(args.runs)]
    _, drill_rc, drill_findings = run_drill(DEPLOY)
    checkov_times: list[float] = []
    checkov_deploy: list[dict[str, str]] = []
    if checkov:
        for _ in range(args.checkov_runs):
            wall, checkov_deploy = run_checkov(checkov, DEPLOY)
            checkov_times.append(wall)

    cases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case, (fixture, rule, pattern) in CASES.items():
            folder = Path(tmp) / fixture.removesuffix(".yaml")
            folder.mkdir()
            shutil.copy(FIXTURES / fixture, folder / fixture)
            d_wall, d_rc, d_found = run_drill(folder)
            row: dict[str, Any] = {
                "fixture": fixture,
                "drill": {"exit": d_rc, "seconds": round(d_wall, 4),
                          "findings": [f"{f['rule']}: {f['message']}" for f in d_found],
                          "caught": None if rule is None else any(f["rule"] == rule
                                                                  for f in d_found),
                          "false_positives": len(d_found) if rule is None else None},
            }
            if checkov:
                c_wall, c_found = run_checkov(checkov, folder)
                row["checkov"] = {
                    "seconds": round(c_wall, 3),
                    "failed": [f"{f['id']} {f['name']}" for f in c_found],
                    "caught": None if pattern is None else any(
                        re.search(pattern, f["name"], re.I) for f in c_found),
                    "false_positives": len(c_found) if pattern is None else None,
                    "flags_secretKeyRef": any("secret" in f["name"].lower() for f in c_found)
                    if pattern is None else None,
                }
            cases[case] = row

    d_sum, c_sum, f_sum = summary(drill_times), summary(checkov_times), summary(floor_times)
    print(f"deploy/k8s: {len(files)} YAML files")
    print(f"  drill audit : {d_sum['median']:.3f} s median of {args.runs} (exit {drill_rc}, "
          f"{len(drill_findings)} findings); one-file floor {f_sum['median']:.3f} s")
    if checkov:
        print(f"  checkov     : {c_sum['median']:.3f} s median of {args.checkov_runs} "
              f"({len(checkov_deploy)} failed checks) [{version}]")
    print(f"\n{'case':28} {'drill':>8} {'checkov':>8}")
    for case, row in cases.items():
        def cell(tool: str, row: dict[str, Any] = row) -> str:
            r = row.get(tool)
            if r is None:
                return "n/a"
            if r["caught"] is None:
                return f"{r['false_positives']} FP"
            return "caught" if r["caught"] else "MISSED"
        print(f"{case:28} {cell('drill'):>8} {cell('checkov'):>8}")
    corpus = corpus_rows(checkov)
    print_corpus(corpus)
    ip = in_process_seconds(DEPLOY, args.runs)
    print(f"\ndrill audit in-process (load + rules, no interpreter start-up): "
          f"{ip['median'] * 1000:.1f} ms median")
    drill_corpus = corpus["totals"].get("drill", {})
    goal_met = d_sum["median"] is not None and d_sum["median"] < GOAL_SECONDS and all(
        (r["drill"]["caught"] is not False) and not r["drill"]["false_positives"]
        for r in cases.values()) and not drill_corpus.get("missed") \
        and not drill_corpus.get("false_positives")
    write_results("audit_vs_checkov", {
        "goal": f"drill catches every case and every corpus mark, 0 false positives, "
                f"< {GOAL_SECONDS} s for deploy/k8s",
        "goal_met": goal_met,
        "checkov_version": version,
        "deploy": {"files": len(files),
                   "drill": {**d_sum, "exit": drill_rc, "findings": drill_findings},
                   "drill_in_process": ip,
                   "drill_one_file_floor": f_sum,
                   "checkov": {**c_sum, "failed_checks": len(checkov_deploy),
                               "failed": sorted({f"{f['id']} {f['name']}"
                                                 for f in checkov_deploy})}},
        "cases": cases,
        "corpus": corpus,
    })
    return 0 if goal_met else 1


if __name__ == "__main__":
    sys.exit(main())

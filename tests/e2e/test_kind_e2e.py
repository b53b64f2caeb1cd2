"""Scenarios end to end on a real kind cluster: cluster up, drill run --target kind (one
scenario, then the pre-release drill), cluster down.

Runs wherever `docker` and `kind` work. Where they are absent (e.g. our build machines:
unprivileged Docker, no image pulls) it reports itself as SKIPPED with the reason: never
as passed. That skip is the only one allowed here, and only for missing docker/kind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "redis-sentinel-failover"


def _docker_and_kind_work() -> str | None:
    """None when both work, else why not."""
    for tool in ("docker", "kind"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60,
                          check=False)
    if info.returncode != 0:
        return f"docker does not answer: {info.stderr.strip().splitlines()[-1:]}"
    return None


def _drill(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "drill"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800, check=False)


@pytest.fixture(scope="module")
def kind_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`drill cluster up` once for the module; always `drill cluster down` at the end."""
    why = _docker_and_kind_work()
    if why is not None:
        # Not run (not passed): docker/kind are absent on this machine.
        pytest.skip(f"not run: {why}; this test needs a machine where kind can create "
                    "a cluster")
    env = {**os.environ, "DRILL_STATE_DIR": str(tmp_path_factory.mktemp("kind-state"))}
    up = _drill("cluster", "up", env=env)
    try:
        assert up.returncode == 0, up.stderr
        status = _drill("cluster", "status", "--format", "json", env=env)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["pods"], "no member pods listed"
        yield env
    finally:
        _drill("cluster", "down", env=env)


def _run_on_kind(env: dict[str, str], out: Path, ref: str) -> dict[str, Any]:
    """Runs `ref` on a sound cluster: it must pass. A failed scenario there is a finding
    (or a broken kind target), an error or inconclusive one means it could not judge:
    either is a test failure, never a pass."""
    run = _drill("run", ref, "--target", "kind", "--context", "kind-drill", "--out", str(out),
                 env=env)
    summary: dict[str, Any] = json.loads(next(out.glob("*/summary.json")).read_text())
    outcomes = {s["name"]: (s["outcome"], s.get("reason")) for s in summary["scenarios"]}
    assert run.returncode == 0, (run.returncode, outcomes, run.stdout + run.stderr)
    assert summary["outcome"] == "passed", outcomes
    assert summary["target"] == "kind"
    assert summary["environment"]["context"] == "kind-drill"
    assert summary["environment"]["cluster_fingerprint"]
    return summary


def test_redis_failover_on_kind(kind_cluster: dict[str, str], tmp_path: Path) -> None:
    summary = _run_on_kind(kind_cluster, tmp_path / "reports", SCENARIO)
    scenario, = summary["scenarios"]
    assert scenario["name"] == SCENARIO and scenario["outcome"] == "passed", scenario
    assert scenario["measurements"]["lost_acknowledged_writes"] == 0


def test_pre_release_drill_on_kind(kind_cluster: dict[str, str], tmp_path: Path) -> None:
    """The same drill file as on the local target, and every scenario passes there (none
    fails, errors or is inconclusive because an operation is missing on kind)."""
    summary = _run_on_kind(kind_cluster, tmp_path / "reports", "pre-release")
    outcomes = {s["name"]: s["outcome"] for s in summary["scenarios"]}
    assert len(outcomes) == 7, outcomes
    assert set(outcomes.values()) == {"passed"}, outcomes

"""The kind e2e test passes only a drill that passed: a failed, error or inconclusive run on
a sound cluster fails it (it cannot run here: docker and kind are absent)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import test_kind_e2e as e2e


def fake_run(monkeypatch: pytest.MonkeyPatch, code: int, outcome: str) -> None:
    """`drill run` on kind writes a bundle with `outcome` under --out and exits `code`."""
    def drill(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        bundle = Path(args[args.index("--out") + 1]) / "run-1"
        bundle.mkdir(parents=True)
        summary: dict[str, Any] = {
            "target": "kind", "outcome": outcome,
            "environment": {"context": "kind-drill", "cluster_fingerprint": "abc"},
            "scenarios": [{"name": e2e.SCENARIO, "outcome": outcome, "reason": "",
                           "measurements": {"lost_acknowledged_writes": 0}}]}
        (bundle / "summary.json").write_text(json.dumps(summary))
        return subprocess.CompletedProcess(["drill"], code, "", "")

    monkeypatch.setattr(e2e, "_drill", drill)


@pytest.mark.parametrize(("code", "outcome"), [(1, "failed"), (3, "error"),
                                               (3, "inconclusive"), (0, "failed")])
def test_anything_but_passed_fails_the_e2e_test(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path, code: int,
                                                outcome: str) -> None:
    fake_run(monkeypatch, code, outcome)
    with pytest.raises(AssertionError):
        e2e.test_redis_failover_on_kind({}, tmp_path)


def test_a_passed_run_passes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_run(monkeypatch, 0, "passed")
    e2e.test_redis_failover_on_kind({}, tmp_path)

"""kill -9 of the runner right after a fault: the next drill refuses to start, and
`drill recover` replays the journaled undo and leaves the stack healthy."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drillrunner.cli import main
from drillrunner.core.waiting import poll_until
from drillrunner.services.registry import full_catalog
from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration


def _journal_has(path: Path, event: str) -> bool:
    try:
        return any(json.loads(line)["event"] == event for line in path.read_text().splitlines()
                   if line.strip())
    except (OSError, ValueError):
        return False


@pytest.mark.parametrize(("scenario", "service"), [
    ("redis-sentinel-failover", "redis"),
    ("timescaledb-primary-failover", "timescaledb"),
])
def test_kill_runner_after_fault_then_recover(drill_stack: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              scenario: str, service: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from drillrunner.cli import main; main()", "run", scenario,
         "--out", str(tmp_path)],
        cwd=ROOT, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        journal = poll_until(lambda: next(tmp_path.glob("*/journal.jsonl"), None),
                             timeout=60, what="the run's journal")
        poll_until(lambda: _journal_has(journal, "fault-return"), timeout=90, interval=0.01,
                   what="the first fault")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert not _journal_has(journal, "undo-done")
    capsys.readouterr()
    assert main(["run", scenario, "--out", str(tmp_path / "again")]) == 3
    assert "drill recover" in capsys.readouterr().err
    assert main(["recover"]) == 0
    assert _journal_has(journal, "undo-done")
    assert main(["recover"]) == 0  # idempotent: nothing left to do
    from drillrunner.engine.context import RunContext
    from drillrunner.engine.history import History
    from drillrunner.stack.local import LocalTarget

    target = LocalTarget(drill_stack)
    catalog = full_catalog()
    ready = catalog.get(f"{service}.ready")
    assert ready is not None
    ctx = RunContext(target=target, scenario="check", history=History(),
                     record=lambda *a, **k: None)
    started = time.monotonic()
    poll_until(lambda: ready.call(ctx, ready.bind({})), timeout=60, interval=0.5,
               what=f"{service} ready after recover")
    assert time.monotonic() - started < 60
    for member in target.members(service):
        assert target.is_running(member), member.name


# -- every fault type: kill -9 after injection, then `drill recover` ------------------------
# One fixture scenario per kind of effect (tests/integration/recover_scenarios/), each with
# every fault of that kind across the services (one per service, so they do not interfere):
# together they cover every fault in the catalog (test_every_fault_is_covered).
SCENARIOS = Path(__file__).parent / "recover_scenarios"
# Roles may move between members (a failover; a Redis tier rebuilt from its snapshot starts
# with redis-0 as primary); the set of roles per service may not change.
FAILOVER_GROUPS = {"kill-primary", "destroy-data"}
# The failover group last: it leaves the TimescaleDB primary on the other member.
GROUPS = sorted((p.stem for p in SCENARIOS.glob("*.yaml")), key=lambda g: (g == "kill-primary", g))
READY = {"redis": "redis.ready", "timescaledb": "timescaledb.ready", "nats": "nats.ready",
         "kafka": "kafka.ready", "oms": "oms.ready", "feast": "feast.features_correct"}
# Members with one fixed role each; Kafka's and NATS's leadership moves between members on
# its own (per partition / stream, and the KRaft controller), so for those only the set of
# roles is compared.
FIXED_ROLES = {"redis", "timescaledb", "oms", "feast"}


def test_every_fault_is_covered() -> None:
    import re

    from drillrunner.core.actions import ActionKind

    used: set[str] = set()
    for path in SCENARIOS.glob("*.yaml"):
        used |= set(re.findall(r"^\s+- ([a-z_]+\.[a-z_]+):", path.read_text(), re.MULTILINE))
    local = {n for n in full_catalog().names(ActionKind.FAULT) if n.split(".")[0] in READY}
    missing = local - used  # faults of other targets (kind.*) are not run on the local stack
    assert not missing, f"faults with no kill -9 recover test: {sorted(missing)}"


def _status(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    capsys.readouterr()
    assert main(["stack", "status", "--format", "json"]) == 0
    return {row["name"]: row for row in json.loads(capsys.readouterr().out)}


def _roles_by_service(status: dict[str, dict[str, object]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in status.values():  # "leader+controller": one token per role held
        out.setdefault(str(row["service"]), []).extend(str(row["role"]).split("+"))
    return {k: sorted(v) for k, v in out.items()}


def _fill(group: str, status: dict[str, dict[str, object]], dest: Path, *,
          recovery_timeout: str | None = None) -> Path:
    from string import Template

    def replica(service: str) -> str:
        return next(n for n, r in sorted(status.items())
                    if r["service"] == service and "replica" in str(r["role"]).split("+"))

    text = Template((SCENARIOS / f"{group}.yaml").read_text()).substitute(
        redis_replica=replica("redis"), tsdb_replica=replica("timescaledb"))
    if recovery_timeout:
        text = text.replace("recovery:\n  timeout: 10m",
                            f"recovery:\n  timeout: {recovery_timeout}")
    path = dest / f"{group}.yaml"
    path.write_text(text)
    return path


def _events(path: Path) -> list[dict[str, object]]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []  # a line being written


def _start_run(scenario: Path, out: Path) -> tuple[subprocess.Popen[bytes], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from drillrunner.cli import main; main()", "run",
         str(scenario), "--out", str(out)],
        cwd=ROOT, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = poll_until(lambda: next(out.glob("*/journal.jsonl"), None), timeout=60,
                         what="the run's journal")
    return proc, journal


def _kill_when(proc: subprocess.Popen[bytes], journal: Path, ready: object, what: str,
               timeout: float = 240) -> None:
    def seen() -> bool:
        events = _events(journal)
        errors = [e for e in events if e["event"] in ("error", "fault-failed", "scenario-end")]
        assert not errors, f"the run went wrong before the kill: {errors}"
        assert proc.poll() is None, "the runner ended before the kill"
        return bool(ready(events))  # type: ignore[operator]

    try:
        poll_until(seen, timeout=timeout, interval=0.02, what=what)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _canaries(target: object) -> list[tuple[str, object, set[int]]]:
    """Acknowledged writes to the stateful stores, read back after recovery."""
    from drillrunner.engine.context import RunContext
    from drillrunner.engine.history import History

    catalog = full_catalog()
    out = []
    for name in ("redis.sequenced_writes", "timescaledb.sequenced_writes"):
        spec = catalog.get(name)
        assert spec is not None
        ctx = RunContext(target=target, scenario="canary", history=History(),  # type: ignore[arg-type]
                         record=lambda *a, **k: None)
        client = spec.call(ctx, spec.bind({}))
        acked = set()
        for seq in range(30):
            client.write(seq)
            acked.add(seq)
        out.append((name, client, acked))
    return out


def _wait_ready(state: Path, when: str) -> None:
    """Every service's ready probe holds (a previous test's rollback may still settle)."""
    from drillrunner.engine.context import RunContext
    from drillrunner.engine.history import History
    from drillrunner.stack.local import LocalTarget

    target = LocalTarget(state)
    catalog = full_catalog()
    ctx = RunContext(target=target, scenario="check", history=History(),
                     record=lambda *a, **k: None)
    for probe in READY.values():
        spec = catalog.get(probe)
        assert spec is not None
        poll_until(lambda spec=spec: spec.call(ctx, spec.bind({})) is True,  # type: ignore[misc]
                   timeout=120, interval=0.5, what=f"{probe} {when}")


def _settled_status(state: Path, capsys: pytest.CaptureFixture[str]
                    ) -> dict[str, dict[str, object]]:
    _wait_ready(state, "before the drill")
    return _status(capsys)


def _assert_healthy(state: Path, capsys: pytest.CaptureFixture[str],
                    before: dict[str, dict[str, object]], exact_roles: bool,
                    canaries: list[tuple[str, object, set[int]]]) -> None:
    from drillrunner.stack.local import LocalTarget
    from drillrunner.targets.local.supervisor import process_state, tree_pids

    _wait_ready(state, "after recover")
    target = LocalTarget(state)
    stopped = []
    for dep in target.deployments():
        for member in dep.members():
            pid = target.pid(member)
            assert pid is not None and target.is_running(member), member.name
            stopped += [(member.name, p) for p in tree_pids(pid) if process_state(p) == "T"]
    assert not stopped, f"SIGSTOPped processes left behind: {stopped}"
    after = _status(capsys)
    assert set(after) == set(before)  # no leftover member (a PITR copy) and none missing
    assert _roles_by_service(after) == _roles_by_service(before)
    if exact_roles:
        def fixed(st: dict[str, dict[str, object]]) -> dict[str, object]:
            return {n: r["role"] for n, r in st.items() if r["service"] in FIXED_ROLES}

        assert fixed(after) == fixed(before)
    for name, client, acked in canaries:
        assert client.read_back(acked) == acked, f"{name}: acknowledged writes lost"  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):  # redis's SequencedWrites.close has a bug
            client.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("group", GROUPS)
def test_every_fault_kill_runner_then_recover(drill_stack: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              group: str) -> None:
    from drillrunner.stack.local import LocalTarget

    before = _settled_status(drill_stack, capsys)
    canaries = _canaries(LocalTarget(drill_stack))
    scenario = _fill(group, before, tmp_path)
    proc, journal = _start_run(scenario, tmp_path / "reports")
    # All faults returned and the runner is waiting for recovery: kill it there.
    _kill_when(proc, journal, lambda evs: any(e["event"] == "recovery-probe" for e in evs),
               f"every fault of {group} injected")
    pending = [e for e in _events(journal) if e["event"] == "undo-intent"]
    assert pending and not any(e["event"] == "undo-done" for e in _events(journal))
    capsys.readouterr()
    assert main(["recover"]) == 0, capsys.readouterr()
    done = [e for e in _events(journal) if e["event"] == "undo-done"]
    assert len(done) == len(pending)
    assert main(["recover"]) == 0  # idempotent
    assert LocalTarget(drill_stack).network_cuts().active() == []
    _assert_healthy(drill_stack, capsys, before, group not in FAILOVER_GROUPS, canaries)


def test_kill_runner_in_the_middle_of_rollback(drill_stack: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """One undo done, the next one started (SIGCONT sent or not): recover replays every undo
    without `undo-done`, the interrupted one included, and they are idempotent."""
    from drillrunner.stack.local import LocalTarget

    before = _settled_status(drill_stack, capsys)
    canaries = _canaries(LocalTarget(drill_stack))
    scenario = _fill("pause-member", before, tmp_path, recovery_timeout="1s")
    proc, journal = _start_run(scenario, tmp_path / "reports")

    def mid_rollback(evs: list[dict[str, object]]) -> bool:
        kinds = [e["event"] for e in evs]
        return kinds.count("undo-done") == 1 and kinds.count("undo-start") == 2

    _kill_when(proc, journal, mid_rollback, "the second undo started")
    events = _events(journal)
    intents = sum(e["event"] == "undo-intent" for e in events)
    assert sum(e["event"] == "undo-done" for e in events) == 1 and intents == 4
    capsys.readouterr()
    assert main(["recover"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "3 undo(s) replayed" in out, out
    _assert_healthy(drill_stack, capsys, before, True, canaries)

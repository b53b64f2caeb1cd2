"""Every shipped scenario on the real local stack, through `drill run`. The broken variants
each check must catch are the detection matrix (test_detection_matrix.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drillrunner.cli import main
from tests.integration.conftest import run_drill

pytestmark = pytest.mark.integration

# Scenarios that pass on a sound stack. feast-health-reflects-dependencies is not among them:
# Feast's /health ignores its online store, a real finding the drill reports (below).
PASSING = [
    "timescaledb-primary-failover",
    "timescaledb-replica-lag-failover",
    "timescaledb-primary-freeze",
    "timescaledb-lagging-replica-not-promoted",
    "timescaledb-dcs-quorum-loss",
    "timescaledb-leader-partitioned-from-dcs",
    "timescaledb-switchover",
    "timescaledb-pitr-restore",
    "redis-sentinel-failover",
    "redis-restart-persistence",
    "redis-backup-restore",
    "kafka-leader-loss",
    "kafka-controller-loss",
    "nats-jetstream-leader-loss",
    "nats-jetstream-store-loss",
    "feast-online-store-loss",
    "feast-registry-restore",
    "kill-switch-fail-closed",
    "kill-switch-survives-restart",
    "circuit-breaker-opens",
    "simulation-guard",
    "etcd-leader-loss",
    "etcd-quorum-loss",
]
# Where no write is acknowledged by design (the kill-switch blocks every order).
NO_WRITES = {"kill-switch-survives-restart", "simulation-guard"}


def _scenario(summary: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(s for s in summary["scenarios"] if s["name"] == name)


@pytest.mark.parametrize("name", PASSING)
def test_scenario_passes_on_a_sound_stack(drill_stack: Path, tmp_path: Path, name: str) -> None:
    code, summary = run_drill(tmp_path, name)
    s = _scenario(summary, name)
    assert s["outcome"] == "passed", s
    assert code == 0
    m = s["measurements"]
    assert m["outage_observed"] is True, m  # the fault was seen to take effect
    assert m["lost_acknowledged_writes"] == 0
    assert m["acknowledged_writes"] > 0 or name in NO_WRITES
    assert m["rto_seconds"] is not None and 0 < m["rto_seconds"] < 60
    assert m["rto_error_seconds"] is not None and m["rto_error_seconds"] >= 0
    assert all(c["verdict"] == "PASS" for c in s["checks"])
    bundle = next(tmp_path.glob("*/"))
    assert main(["verify", str(bundle)]) == 0


def test_a_corrupted_backup_is_named_by_verify(drill_stack: Path, tmp_path: Path) -> None:
    """No outage by design (the repository is corrupted, not the live cluster): the fault
    is seen to take effect through pgbackrest verify naming the file it changed."""
    code, summary = run_drill(tmp_path, "timescaledb-backup-integrity")
    s = _scenario(summary, "timescaledb-backup-integrity")
    assert s["outcome"] == "passed" and code == 0, s
    check = next(c for c in s["checks"] if c["name"] == "timescaledb.backup_verified")
    assert check["verdict"] == "PASS", check
    assert s["measurements"]["lost_acknowledged_writes"] == 0
    assert s["measurements"]["acknowledged_writes"] > 0


def test_an_unrestorable_backup_fails_the_pitr_drill(drill_stack: Path, tmp_path: Path) -> None:
    """WAL archiving pointed at /bin/true from outside: the archiver reports success and
    keeps nothing, so the restore cannot reach its target. That is the failure the PITR
    drill exists to find: `failed` and C08 FAIL, never an error."""
    from drillrunner.services.timescaledb import sql
    from drillrunner.services.timescaledb.ops import pg_ops
    from drillrunner.services.timescaledb.roles import the_primary
    from drillrunner.stack.local import LocalTarget

    target = LocalTarget(drill_stack)
    dsn = pg_ops(target).dsn(the_primary(target).name)
    _set_archive_command(dsn, "/bin/true")
    try:
        code, summary = run_drill(tmp_path, "timescaledb-pitr-restore")
    finally:
        _set_archive_command(dsn, None)
    assert sql.fetch_value(dsn, "SHOW archive_command") != "/bin/true"
    s = _scenario(summary, "timescaledb-pitr-restore")
    assert s["outcome"] == "failed" and code == 1, s
    check = next(c for c in s["checks"] if c["name"] == "timescaledb.pitr_matches_target")
    assert check["verdict"] == "FAIL" and "could not be restored" in check["summary"]
    assert s["measurements"]["rto_seconds"] is None
    assert s["measurements"]["rto_exceeds_seconds"] is not None
    assert summary["claims"]["C08-backup-restore"] == "FAIL"


def _set_archive_command(dsn: str, command: str | None) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        if command is None:
            conn.execute("ALTER SYSTEM RESET archive_command")
        else:
            conn.execute(f"ALTER SYSTEM SET archive_command = '{command}'")
        conn.execute("SELECT pg_reload_conf()")


def test_no_stack_secret_reaches_the_bundle(drill_stack: Path, tmp_path: Path) -> None:
    """The stack's Feast role has a real password (its PostgreSQL offline store needs one):
    after a drill that uses it, no file of the evidence bundle holds it."""
    secret = (drill_stack / "feast" / "pg-password").read_text().strip()
    assert len(secret) >= 12
    run_drill(tmp_path, "feast-online-store-loss")
    bundle = next(p for p in tmp_path.iterdir() if p.is_dir())
    files = [p for p in bundle.rglob("*") if p.is_file()]
    assert any(p.parent.name == "artifacts" for p in files)
    for path in files:
        assert secret not in path.read_text(errors="replace"), path


def test_feast_health_ignoring_its_online_store_is_reported(drill_stack: Path,
                                                         tmp_path: Path) -> None:
    code, summary = run_drill(tmp_path, "feast-health-reflects-dependencies")
    s = _scenario(summary, "feast-health-reflects-dependencies")
    assert s["outcome"] == "failed" and code == 1
    check = next(c for c in s["checks"] if c["name"] == "feast.health_reflects_dependencies")
    assert check["verdict"] == "FAIL"
    assert summary["claims"]["C12-dependency-health"] == "FAIL"


def test_kafka_acks1_loses_acknowledged_messages(drill_stack: Path, tmp_path: Path) -> None:
    code, summary = run_drill(tmp_path, "kafka-leader-loss-acks1")
    s = _scenario(summary, "kafka-leader-loss-acks1")
    assert s["outcome"] == "failed" and code == 1
    assert s["measurements"]["lost_acknowledged_writes"] > 0


def test_baseline_not_met_injects_nothing(drill_stack: Path, tmp_path: Path) -> None:
    """A frozen replica: the steady state does not hold, so nothing is injected."""
    from drillrunner.stack.local import LocalTarget

    target = LocalTarget(drill_stack)
    replica = next(m for m in target.members("redis") if m.name == _redis_replica(drill_stack))
    target.pause(replica)
    try:
        code, summary = run_drill(tmp_path, "redis-sentinel-failover")
    finally:
        target.resume(replica)
    s = _scenario(summary, "redis-sentinel-failover")
    assert s["outcome"] == "baseline-not-met" and code == 1
    journal = next(tmp_path.glob("*/journal.jsonl")).read_text()
    assert '"fault-invoke"' not in journal


def test_dry_run_injects_nothing(drill_stack: Path, tmp_path: Path) -> None:
    code = main(["run", "redis-sentinel-failover", "--dry-run", "--out", str(tmp_path)])
    assert code == 3
    journal = next(tmp_path.glob("*/journal.jsonl")).read_text()
    assert '"fault-invoke"' not in journal


def test_status_json_contract(drill_stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["stack", "status", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    for row in rows:
        assert {"service", "name", "role", "host", "port", "pid"} <= row.keys()
    roles = {r["name"]: r["role"] for r in rows}
    # Patroni's view: the standby it names synchronous (the only one it would promote).
    assert sorted(r for n, r in roles.items() if n.startswith("tsdb")) == [
        "primary", "replica+sync"]
    assert sorted(r for n, r in roles.items() if n.startswith("redis")) == ["primary", "replica"]


def _redis_replica(state: Path) -> str:
    from drillrunner.services.redis import member_roles
    from drillrunner.stack.local import LocalTarget

    roles = member_roles(LocalTarget(state))
    return next(n for n, r in roles.items() if r == "replica")

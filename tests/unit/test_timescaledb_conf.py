"""The local PostgreSQL deployment's generated settings and layout rules (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drillrunner.core.errors import ActionFailed
from drillrunner.services.timescaledb.local import PostgresDeployment
from drillrunner.services.timescaledb.spec import PostgresSettings
from drillrunner.services.timescaledb.workload import SequencedWrites
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.local.supervisor import Supervisor


def deployment(tmp_path: Path, synchronous: bool = True) -> PostgresDeployment:
    settings = StackSettings(port_base=18500,
                             timescaledb=PostgresSettings(synchronous=synchronous))
    dep = PostgresDeployment(settings, tmp_path, Supervisor(tmp_path))
    dep.timescaledb_installed = lambda: False  # type: ignore[method-assign]
    return dep


def test_patroni_owns_the_standby_names_and_cluster_wide_settings_go_to_the_dcs(
    tmp_path: Path,
) -> None:
    dep = deployment(tmp_path)
    wide, local = dep._parameters()
    assert "synchronous_standby_names" not in {**wide, **local}  # Patroni sets it
    assert wide["max_wal_senders"] == "10" and wide["wal_log_hints"] == "on"
    assert "max_connections" not in local and local["synchronous_commit"] == "on"
    dcs = dep.dcs_config()
    assert dcs["synchronous_mode"] is True and dcs["maximum_lag_on_failover"] == 1048576
    assert dcs["ttl"] == 20 and dcs["failsafe_mode"] is False
    assert deployment(tmp_path, synchronous=False).dcs_config()["synchronous_mode"] is False


def test_the_pitr_copy_does_not_archive(tmp_path: Path) -> None:
    dep = deployment(tmp_path)
    assert dep.parameters()["archive_mode"] == "on"
    assert "archive-push" in dep.parameters()["archive_command"]
    pitr = dep.parameters("2026-01-01 00:00:00+00")
    assert pitr["archive_mode"] == "off" and "archive_command" not in pitr
    assert pitr["recovery_target_time"] == "2026-01-01 00:00:00+00"
    assert pitr["recovery_target_action"] == "promote"
    assert "shared_preload_libraries" not in pitr  # TimescaleDB absent here


def test_timings_that_break_patronis_rule_are_refused(tmp_path: Path) -> None:
    settings = StackSettings(port_base=18500, timescaledb=PostgresSettings(ttl=5, loop_wait=3))
    dep = PostgresDeployment(settings, tmp_path, Supervisor(tmp_path))
    assert dep.timings().problems()


def test_members_and_connection_strings(tmp_path: Path) -> None:
    dep = deployment(tmp_path)
    assert [(m.name, m.port) for m in dep.members()] == [("tsdb-0", 18500), ("tsdb-1", 18501)]
    assert dep.pitr_member().port == 18502
    assert dep.api("tsdb-1") == "http://127.0.0.1:18504" and dep.router_port() == 18505
    dsn = dep.cluster_dsn()
    assert "port=18500,18501" in dsn and "target_session_attrs=read-write" in dsn
    assert "password" not in dsn


def test_workload_table_must_be_a_plain_identifier() -> None:
    with pytest.raises(ActionFailed):
        SequencedWrites("host=x", "drill; DROP TABLE x", "run", 1.0)

"""The local PostgreSQL deployment's generated settings and layout rules (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drillrunner.core.errors import ActionFailed
from drillrunner.services.timescaledb.local import PostgresDeployment
from drillrunner.services.timescaledb.local_files import _parse_conf
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


def test_synchronous_standby_names_name_the_peer_and_follow_the_setting(tmp_path: Path) -> None:
    dep = deployment(tmp_path)
    conf = _parse_conf(dep._conf_text("tsdb-0", True, None))
    assert conf["synchronous_standby_names"] == "'\"tsdb-1\"'"
    assert _parse_conf(dep._conf_text("tsdb-1", True, None))[
        "synchronous_standby_names"] == "'\"tsdb-0\"'"
    assert _parse_conf(dep._conf_text("tsdb-0", False, None))["synchronous_standby_names"] == "''"


def test_archive_never_overwrites_and_the_pitr_copy_does_not_archive(tmp_path: Path) -> None:
    dep = deployment(tmp_path)
    live = _parse_conf(dep._conf_text("tsdb-0", True, None))
    assert live["archive_mode"] == "on"
    assert "test ! -f" in live["archive_command"] and "cmp -s" in live["archive_command"]
    pitr = _parse_conf(dep._conf_text("tsdb-pitr", True, "2026-01-01 00:00:00+00"))
    assert pitr["archive_mode"] == "off"
    assert pitr["recovery_target_time"] == "'2026-01-01 00:00:00+00'"
    assert pitr["recovery_target_action"] == "'promote'"
    assert pitr["synchronous_standby_names"] == "''"
    assert "shared_preload_libraries" not in pitr  # TimescaleDB absent here


def test_timeline_comes_from_history_files(tmp_path: Path) -> None:
    dep = deployment(tmp_path)
    wal = dep.datadir("tsdb-1") / "pg_wal"
    wal.mkdir(parents=True)
    assert dep._timeline("tsdb-1") == 1
    (wal / "00000002.history").touch()
    (wal / "0000000A.history").touch()
    assert dep._timeline("tsdb-1") == 10


def test_members_and_connection_strings(tmp_path: Path) -> None:
    dep = deployment(tmp_path)
    assert [(m.name, m.port) for m in dep.members()] == [("tsdb-0", 18500), ("tsdb-1", 18501)]
    assert dep.pitr_member().port == 18502
    dsn = dep.cluster_dsn()
    assert "port=18500,18501" in dsn and "target_session_attrs=read-write" in dsn
    assert "password" not in dsn


def test_workload_table_must_be_a_plain_identifier() -> None:
    with pytest.raises(ActionFailed):
        SequencedWrites("host=x", "drill; DROP TABLE x", "run", 1.0)

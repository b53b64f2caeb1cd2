"""pgBackRest's configuration, commands and report parsing (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drillrunner.services.timescaledb import pgbackrest as pgbr
from drillrunner.services.timescaledb.local import PostgresDeployment
from drillrunner.services.timescaledb.spec import PostgresSettings
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.local.supervisor import Supervisor

ROOT = Path("/var/tmp/drill/timescaledb")

VERIFY_OK = """\
stanza: drill
status: ok
  archiveId: 15-1, total WAL checked: 5, total valid WAL: 5
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
  backup: 20261207-201212F, status: valid, total files checked: 964, total valid files: 964
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
"""

VERIFY_BAD = """\
2026-12-07 20:16:15.982 P00   INFO: verify command begin 2.45: --config=/x/pgbackrest.conf \
--log-level-console=info --output=text --stanza=drill --verbose
2026-12-07 20:16:16.180 P01   INFO: invalid checksum '20261207-201212F/pg_data/base/1/2838.lz4'
2026-12-07 20:16:16.447 P00   INFO: stanza: drill
                                    status: error
stanza: drill
status: error
  archiveId: 15-1, total WAL checked: 6, total valid WAL: 6
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
  backup: 20261207-201212F, status: invalid, total files checked: 964, total valid files: 963
    missing: 0, checksum invalid: 1, size invalid: 0, other: 0
  backup: 20261207-201212F_20261207-201216I, status: invalid, total files checked: 964, \
total valid files: 963
    missing: 0, checksum invalid: 1, size invalid: 0, other: 0
2026-12-07 20:16:16.447 P00   INFO: verify command end: completed successfully (467ms)
"""

INFO = [{
    "name": "drill", "status": {"code": 0, "message": "ok"},
    "db": [{"id": 1, "system-id": 7716657487293727700, "version": "15"}],
    "backup": [
        {"label": "20261207-201212F", "type": "full",
         "archive": {"start": "000000010000000000000002", "stop": "000000010000000000000003"},
         "info": {"size": 22992597, "repository": {"delta": 4534054, "size": 4534054}},
         "timestamp": {"start": 1796674332, "stop": 1796674335}},
        {"label": "20261207-201212F_20261207-201216I", "type": "incr",
         "archive": {"start": "000000020000000000000004", "stop": "000000020000000000000005"},
         "info": {"size": 22992597, "repository": {"delta": 493, "size": 4534054}},
         "timestamp": {"start": 1796674336, "stop": 1796674337}},
    ],
}]


class Files:
    root = ROOT


def test_config_keeps_everything_under_the_state_folder_and_lists_every_member() -> None:
    layout = pgbr.Layout.of(ROOT)
    members = [pgbr.PgMember(ROOT / "tsdb-0", 18400, ROOT / "sockets"),
               pgbr.PgMember(ROOT / "tsdb-1", 18401, ROOT / "sockets")]
    text = pgbr.config_text(layout, members)
    paths = [line.split("=", 1)[1] for line in text.splitlines()
             if "=" in line and line.split("=", 1)[1].startswith("/")]
    assert paths and all(p.startswith(str(ROOT)) for p in paths)
    assert f"repo1-path={ROOT}/pgbackrest/repo" in text
    assert "[drill]" in text and "pg1-port=18400" in text and "pg2-port=18401" in text
    assert "pg2-path=/var/tmp/drill/timescaledb/tsdb-1" in text


def test_archive_and_restore_commands_name_no_member() -> None:
    push = pgbr.archive_command(Files())
    assert push.startswith("pgbackrest --config=/var/tmp/drill/timescaledb/pgbackrest/")
    assert '--stanza=drill --pg1-path="$(pwd)" archive-push %p' in push
    assert "tsdb-" not in push
    get = pgbr.restore_command(Files())
    assert get.endswith('--pg1-path="$(pwd)" archive-get %f "%p"') and "tsdb-" not in get
    assert pgbr.archive_command(Files(), "none") == "/bin/true"
    with pytest.raises(ValueError):
        pgbr.archive_command(Files(), "elsewhere")


def test_restore_argv_targets_a_time_and_promotes() -> None:
    argv = pgbr.restore_argv(pgbr.Layout.of(ROOT), ROOT / "tsdb-pitr",
                             "2026-12-07 20:16:53.269026+00", "20261207-201212F")
    assert argv[-1] == "restore"
    assert {"--type=time", "--target-action=promote", "--archive-mode=off",
            "--target=2026-12-07 20:16:53.269026+00", "--set=20261207-201212F",
            f"--pg1-path={ROOT}/tsdb-pitr"} <= set(argv)
    assert not any(a.startswith("--set") for a in pgbr.restore_argv(
        pgbr.Layout.of(ROOT), ROOT, "t", None))


def test_info_parses_backups_and_the_system_id() -> None:
    status, entries = pgbr.parse_info(json.dumps(INFO))
    assert status == "ok"
    assert [e.type for e in entries] == ["full", "incr"]
    assert entries[1].repo_size == 493 and entries[0].size == 22992597
    assert entries[1].wal_start.startswith("00000002")
    assert pgbr.system_id_of_info(json.dumps(INFO)) == 7716657487293727700
    assert pgbr.system_id_of_info("[]") is None
    assert pgbr.parse_info("[]") == ("no stanza", [])


def test_verify_clean_report_is_ok() -> None:
    report = pgbr.parse_verify(VERIFY_OK)
    assert report.ok and report.status == "ok"
    assert report.backups == {"20261207-201212F": "valid"}


def test_verify_report_names_the_corrupted_file() -> None:
    report = pgbr.parse_verify(VERIFY_BAD)
    assert not report.ok and report.status == "error"
    assert report.problems == [("invalid checksum", "20261207-201212F/pg_data/base/1/2838.lz4")]
    assert report.names("20261207-201212F/pg_data/base/1/2838.lz4") == ["invalid checksum"]
    assert report.names("20261207-201212F/pg_data/base/1/1259.lz4") == []
    assert report.backups["20261207-201212F_20261207-201216I"] == "invalid"


def test_an_unparsable_verify_is_not_ok() -> None:
    assert not pgbr.parse_verify("ERROR: [055]: unable to load info file").ok


def test_flip_bytes_inverts_in_place_keeping_the_size() -> None:
    data = bytes(range(32))
    flipped = pgbr.flip_bytes(data, 8, 4)
    assert len(flipped) == 32 and flipped[:8] == data[:8] and flipped[12:] == data[12:]
    assert flipped[8:12] == bytes(b ^ 0xFF for b in data[8:12])
    assert pgbr.flip_bytes(flipped, 8, 4) == data
    with pytest.raises(ValueError):
        pgbr.flip_bytes(data, 30, 4)


@pytest.mark.parametrize("mode", ["pgbackrest", "none"])
def test_the_members_parameters_follow_wal_archive(tmp_path: Path, mode: str) -> None:
    settings = StackSettings(port_base=18400).with_overrides([f"timescaledb.wal_archive={mode}"])
    assert settings.of(PostgresSettings).wal_archive == mode
    dep = PostgresDeployment(settings, tmp_path, Supervisor(tmp_path))
    dep.timescaledb_installed = lambda: False  # type: ignore[method-assign]
    live = dep.parameters()
    assert live["archive_mode"] == "on"
    assert live["archive_command"] == pgbr.archive_command(dep, mode)
    assert ("archive-push" in live["archive_command"]) is (mode == "pgbackrest")
    pitr = dep.parameters(recovery_target="2026-01-01 00:00:00+00")
    assert pitr["archive_mode"] == "off" and "archive-get" in pitr["restore_command"]


def test_a_missing_pgbackrest_names_the_package(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from drillrunner.core.errors import MissingBinary

    monkeypatch.setattr(pgbr, "BINARY", "pgbackrest-not-installed-here")
    with pytest.raises(MissingBinary, match="apt-get install pgbackrest"):
        pgbr.run(pgbr.Layout(tmp_path), "info")


def test_the_restore_failure_gist_skips_clients_turned_away() -> None:
    from drillrunner.services.timescaledb.checks import _gist

    log = ("LOG:  starting PostgreSQL 15\n"
           "[unknown] FATAL:  the database system is not yet accepting connections\n"
           "FATAL:  recovery ended before configured recovery target was reached\n")
    assert _gist(log) == ("FATAL:  recovery ended before configured recovery target was "
                          "reached")
    assert _gist("no backup to restore: pgbackrest backup failed").startswith("no backup")

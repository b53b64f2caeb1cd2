"""pgBackRest backups, verification and point-in-time restores against real servers.

One stack (etcd + timescaledb) for the module on port base 18400. Tests run in file
order; each leaves one primary and one streaming replica, whichever member is primary.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from drillrunner.core.verdicts import Verdict
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import RunContext
from drillrunner.services.timescaledb import backup, checks, pgbackrest, sql
from drillrunner.services.timescaledb.ops import BacksUpWithPgBackRest, pg_ops
from drillrunner.services.timescaledb.roles import the_primary
from drillrunner.services.timescaledb.workload import sequenced_writes
from drillrunner.stack.local import LocalTarget
from drillrunner.stack.settings import StackSettings
from tests.driving import Driver, inject, make_ctx
from tests.integration.conftest import ServiceStack

pytestmark = pytest.mark.integration

PORT_BASE = 18400
state, target = ServiceStack(("etcd", "timescaledb"), port_base=PORT_BASE).fixtures()
WORKLOAD = "timescaledb.sequenced_writes"
SLO = {"rto": 60.0, "lost_acknowledged_writes": 0}


class Writer(Driver):
    workload, rate, start_ok, noun = WORKLOAD, 50.0, 0, "acked writes"

    def __init__(self, ctx: RunContext, timeout: float = 1.0) -> None:
        super().__init__(ctx, sequenced_writes(ctx, timeout=timeout))


def ops_of(target: LocalTarget) -> Any:
    ops = pg_ops(target)
    assert isinstance(ops, BacksUpWithPgBackRest)
    return ops


def test_config_archive_command_and_check(target: LocalTarget) -> None:
    ops = ops_of(target)
    ops.ensure_stanza()
    layout = pgbackrest.Layout.of(ops.root)
    text = layout.config.read_text()
    assert f"repo1-path={layout.repo}" in text and "pg2-path=" in text
    assert str(ops.root) in text and "/etc" not in text and "/var/log" not in text
    primary = the_primary(target).name
    command = sql.fetch_value(ops.dsn(primary), "SHOW archive_command")
    assert command == pgbackrest.archive_command(ops), command
    ops.pgbackrest_check()
    assert list((layout.root / "log").glob("drill-*.log"))  # logs under the state folder


def test_full_then_incremental_backup_and_verify(target: LocalTarget) -> None:
    ctx = make_ctx(target, slo=SLO)
    full = backup.pgbackrest_backup(ctx, type=pgbackrest.BackupType.FULL)
    assert full.detail["type"] == "full", full
    with Writer(ctx) as w:
        w.wait_ok(20)
    incr = backup.pgbackrest_backup(ctx, type=pgbackrest.BackupType.INCR)
    assert incr.detail["type"] == "incr", incr
    assert str(incr.detail["label"]).startswith(str(full.detail["label"]))
    print(f"\nfull {full.measurements}, incr {incr.measurements}")
    result = checks.backup_verified(ctx)
    assert result.verdict is Verdict.PASS, result
    assert result.measurements["invalid_files"] == 0


def test_pitr_restores_exactly_the_rows_before_the_target(target: LocalTarget) -> None:
    ctx = make_ctx(target, "timescaledb-pitr-restore", slo=SLO)
    backup.pgbackrest_backup(ctx, type=pgbackrest.BackupType.FULL)
    try:
        with Writer(ctx) as w:
            w.wait_ok(40)
            backup.pgbackrest_backup(ctx, type=pgbackrest.BackupType.INCR)
            w.wait_ok(20)
            backup.mark_restore_point(ctx)
            w.wait_ok(40)
            restored = inject(ctx, "restore_pitr", backup.restore_pitr)
        result = checks.pitr_matches_target(ctx)
        print(f"\nPITR: {restored.summary}; {result.summary}; {result.measurements}")
        assert restored.detail["method"] == "pgbackrest"
        assert result.verdict is Verdict.PASS, result
        assert result.measurements["lost_acknowledged_writes"] == 0
        assert result.measurements["rows_after_target_present"] == 0
    finally:
        backup.remove_pitr_member(ctx)


def test_a_corrupted_backup_file_is_named_by_verify(target: LocalTarget) -> None:
    ctx = make_ctx(target, "timescaledb-backup-integrity", slo=SLO)
    backup.pgbackrest_backup(ctx, type=pgbackrest.BackupType.FULL)
    clean = backup.verify_backup(ctx)
    assert clean.measurements["invalid_files"] == 0, clean
    corrupted = inject(ctx, "corrupt_backup_file", backup.corrupt_backup_file)
    name, args = ctx.stash["undos"][0]
    assert name == "timescaledb.restore_backup_file" and args["file"] == corrupted.detail["file"]
    try:
        plain = checks.backup_verified(ctx)
        assert plain.verdict is Verdict.FAIL, plain
        assert any(corrupted.detail["file"] in p
                   for p in plain.evidence["problems"]), plain.evidence
        caught = checks.backup_verified(ctx, expect_corruption=True)
        assert caught.verdict is Verdict.PASS, caught
        assert corrupted.detail["file"] in caught.summary
        print(f"\n{plain.summary}\n{caught.summary}")
    finally:
        undone = backup.restore_backup_file(ctx, **args)
    assert "restored" in undone.summary
    assert "already" in backup.restore_backup_file(ctx, **args).summary
    # The file is sound again: a verify that reports nothing must now fail the claim.
    missed = checks.backup_verified(ctx, expect_corruption=True)
    assert missed.verdict is Verdict.FAIL, missed
    assert "did not report" in missed.summary
    assert checks.backup_verified(ctx).verdict is Verdict.PASS


def test_the_stanza_survives_a_switchover(target: LocalTarget) -> None:
    ops = ops_of(target)
    before = the_primary(target).name
    ops.switchover()
    after = the_primary(target).name
    assert after != before
    ctx = make_ctx(target, slo=SLO)
    ops.pgbackrest_check()  # the new primary's archive-push on its new timeline
    done = backup.pgbackrest_backup(ctx, type=pgbackrest.BackupType.INCR)
    assert done.members == [after] and "FAILED" not in done.summary, done
    timeline = sql.fetch_value(ops.dsn(after),
                               "SELECT timeline_id FROM pg_control_checkpoint()")
    assert str(done.detail["wal_start"]).startswith(f"{int(timeline):08X}"), done.detail


def test_a_backup_needs_only_the_primary(target: LocalTarget) -> None:
    """The replica down: pgBackRest still finds the primary among pg1/pg2 and backs it up."""
    ops = ops_of(target)
    primary = the_primary(target).name
    replica = next(m.name for m in ops.members() if m.name != primary)
    ops.kill(replica)
    try:
        ctx = make_ctx(target, slo=SLO)
        done = backup.pgbackrest_backup(ctx, type=pgbackrest.BackupType.INCR)
        assert "FAILED" not in done.summary, done
    finally:
        ops.start_member(replica)
    ops.wait_streaming(primary, replica, timeout=60.0)


def test_a_pg_basebackup_copy_restores_from_the_pgbackrest_archive(target: LocalTarget) -> None:
    """PostgresOps' plain copy (as on kind) replays WAL fetched by `archive-get`."""
    ctx = make_ctx(target, "timescaledb-pitr-basebackup", slo=SLO)
    client = sequenced_writes(ctx)
    ctx.workloads[WORKLOAD] = client
    backup.base_backup(ctx)
    try:
        with Writer(ctx) as w:
            w.wait_ok(20)
            backup.mark_restore_point(ctx)
            w.wait_ok(20)
            restored = backup.restore_pitr(ctx)
        assert restored.detail["method"] == "pg_basebackup", restored
        result = checks.pitr_matches_target(ctx)
        assert result.verdict is Verdict.PASS, result
    finally:
        backup.remove_pitr_member(ctx)
        client.close()


def _segment_dropped(broken: LocalTarget) -> bool:
    """A segment switched now is reported archived and is not in the repository."""
    ops = ops_of(broken)
    walfile = backup.switch_and_archive(ops, the_primary(broken).name)
    return not list((ops.backup_repo() / "archive").rglob(f"{walfile}*"))


@contextmanager
def wal_archived_nowhere(target: LocalTarget, state: Any) -> Iterator[LocalTarget]:
    """The tier with timescaledb.wal_archive=none, back to the defaults afterwards."""
    broken = LocalTarget(state, StackSettings(port_base=PORT_BASE).with_overrides(
        ["timescaledb.wal_archive=none"]))
    broken.deployment("timescaledb").up()
    try:
        poll_until(lambda: _segment_dropped(broken), timeout=20, interval=0.2,
                   what="the archiver to run /bin/true")  # a reload reaches it later
        yield broken
    finally:
        backup.remove_pitr_member(make_ctx(broken))
        target.deployment("timescaledb").up()
        ops_of(target).pgbackrest_check()


def test_wal_archived_nowhere_refuses_the_backup_and_fails_the_pitr(
        target: LocalTarget, state: Any) -> None:
    with wal_archived_nowhere(target, state) as broken:
        ctx = make_ctx(broken, "timescaledb-pitr-restore", slo=SLO)
        ctx.workloads[WORKLOAD] = sequenced_writes(ctx)
        taken = backup.pgbackrest_backup(ctx, type=pgbackrest.BackupType.FULL)
        assert "FAILED" in taken.summary, taken
        backup.mark_restore_point(ctx)
        restored = backup.restore_pitr(ctx)
        assert restored.measurements["rto_seconds"] is None
        result = checks.pitr_matches_target(ctx)
        assert result.verdict is Verdict.FAIL and "could not be restored" in result.summary
        assert "archive_command" in str(result.evidence["restore_failure"]), result.evidence
        print(f"\n{result.summary}")


def test_wal_lost_after_the_backup_stops_the_restore_short_of_the_target(
        target: LocalTarget, state: Any) -> None:
    """A sound backup, then WAL archived nowhere: replay cannot reach the target."""
    ctx = make_ctx(target, "timescaledb-pitr-restore", slo=SLO)
    backup.pgbackrest_backup(ctx, type=pgbackrest.BackupType.FULL)
    with wal_archived_nowhere(target, state) as broken:
        ctx.target = broken
        client = sequenced_writes(ctx)
        ctx.workloads[WORKLOAD] = client
        for seq in range(1, 4):
            client.write(seq)
        backup.mark_restore_point(ctx)
        restored = backup.restore_pitr(ctx)
        result = checks.pitr_matches_target(ctx)
        client.close()
    assert restored.measurements["rto_seconds"] is None, restored
    assert result.verdict is Verdict.FAIL and "could not be restored" in result.summary
    assert "recovery target" in result.summary, result
    print(f"\n{result.summary}")

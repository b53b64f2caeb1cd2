"""Backups and point-in-time restores of the local PostgreSQL deployment (a mixin of
PostgresDeployment): pgBackRest (full and incremental backups, verify, restore to a time)
and pg_basebackup (the plain copy the PostgresOps protocol offers on every target).

The restore member `tsdb-pitr` is a plain PostgreSQL on its own data folder and port,
started with archiving off: a promoted copy must never push its new timeline into the
cluster's repository, where it would collide with the real cluster's next one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from drillrunner.core.errors import StackError
from drillrunner.services.timescaledb import pgbackrest as pgbr
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.local_files import PG_USER, PITR, STANDING, PostgresFiles
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import ProcessSpec

PITR_READY_TIMEOUT = 60.0
# Settings the restored copy starts with, whatever the backed-up configuration says (a
# Patroni member's postgresql.conf carries its own primary_conninfo and recovery_target*
# lines; without these, a copy of one failed with "multiple recovery targets specified").
PITR_OVERRIDES = {"archive_mode": "off", "synchronous_standby_names": "",
                  "primary_conninfo": "", "recovery_target": "", "recovery_target_lsn": "",
                  "recovery_target_name": "", "recovery_target_xid": ""}


class PgBackRestBackups(PostgresFiles):
    """pgBackRest's stanza for the standing members, and the restores into `tsdb-pitr`."""

    def _stop(self, name: str) -> None:  # the deployment's own
        raise NotImplementedError

    # -- configuration --------------------------------------------------------------------

    @property
    def pgbackrest(self) -> pgbr.Layout:
        return pgbr.Layout.of(self.root)

    def backup_repo(self) -> Path:
        return self.pgbackrest.repo

    def _write_pgbackrest_config(self) -> None:
        layout = self.pgbackrest
        for folder in layout.folders:
            folder.mkdir(parents=True, exist_ok=True)
            self._own(folder, 0o750)
        members = [pgbr.PgMember(self.datadir(n), self.settings.port(n), self.sockets)
                   for n in STANDING]
        text = pgbr.config_text(layout, members)
        if not layout.config.exists() or layout.config.read_text() != text:
            layout.config.write_text(text)
            self._own(layout.config, 0o640)

    def _primary_now(self) -> str:
        """The standing member that answers as a primary (drill's view, from the servers)."""
        import psycopg

        for name in STANDING:
            try:
                if sql.fetch_value(self.dsn(name), "SELECT pg_is_in_recovery()") is False:
                    return name
            except psycopg.Error:
                continue
        raise StackError("no standing member answers as a primary: nothing to back up")

    def ensure_stanza(self) -> None:
        """Write the configuration and create the stanza (idempotent). A repository made
        for another cluster (an earlier initdb: another system id) is dropped first: its
        backups cannot restore this one. Run once the cluster's primary is up."""
        self._prepare()
        self._write_pgbackrest_config()
        layout = self.pgbackrest
        info = pgbr.run(layout, "info", "--output=json", check=False)
        recorded = pgbr.system_id_of_info(info.stdout) if info.code == 0 else None
        current = int(sql.fetch_value(self.dsn(self._primary_now()),
                                      "SELECT system_identifier FROM pg_control_system()"))
        if recorded is not None and recorded != current:
            shutil.rmtree(layout.repo)
            self._write_pgbackrest_config()
        pgbr.run(layout, "stanza-create", timeout=60.0)

    # -- backups --------------------------------------------------------------------------

    def pgbackrest_check(self) -> pgbr.Outcome:
        """`pgbackrest check`: the primary's archive_command reaches the repository."""
        self.ensure_stanza()
        return pgbr.run(self.pgbackrest, "check", timeout=120.0)

    def pgbackrest_backup(self, kind: pgbr.BackupType) -> tuple[pgbr.BackupEntry, float]:
        """A backup of whichever member is primary now (pgBackRest finds it among pg1/pg2);
        returns its entry in `pgbackrest info` and how long the command took."""
        self.ensure_stanza()
        done = pgbr.run(self.pgbackrest, f"--type={kind.value}", "backup", timeout=600.0)
        _, entries = self.pgbackrest_info()
        if not entries:
            raise StackError(f"pgbackrest backup reported no backup: {done.text[-500:]}")
        return entries[-1], done.seconds

    def pgbackrest_info(self) -> tuple[str, list[pgbr.BackupEntry]]:
        return pgbr.parse_info(pgbr.run(self.pgbackrest, "info", "--output=json").stdout)

    def pgbackrest_verify(self) -> pgbr.VerifyReport:
        # The summary (--output=text --verbose) and, in the log lines, each bad file.
        out = pgbr.run(self.pgbackrest, "--output=text", "--verbose",
                       "--log-level-console=info", "verify", timeout=300.0, check=False)
        report = pgbr.parse_verify(out.text)
        if out.code != 0 and report.status == "unknown":
            raise pgbr.PgBackRestFailed(f"pgbackrest verify failed (exit {out.code}): "
                                        f"{out.text[-1500:]}")
        return report

    # -- repository files (the corruption fault and its undo) -------------------------------

    def _stanza_backups(self) -> Path:
        return self.pgbackrest.repo / "backup" / pgbr.STANZA

    def backup_files(self, label: str) -> dict[str, int]:
        top = self._stanza_backups()
        return {str(p.relative_to(top)): p.stat().st_size
                for p in (top / label / "pg_data" / "base").rglob("*") if p.is_file()}

    def read_backup_bytes(self, file: str, offset: int, length: int) -> bytes | None:
        path = self._stanza_backups() / file
        if not path.is_file():
            return None
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(length)

    def write_backup_bytes(self, file: str, offset: int, data: bytes) -> None:
        with (self._stanza_backups() / file).open("r+b") as f:
            f.seek(offset)
            f.write(data)

    # -- restores into tsdb-pitr ----------------------------------------------------------

    def _pitr_spec(self, settings: dict[str, str]) -> ProcessSpec:
        """The restore member's server, its settings given on the command line: they win
        over any configuration file the backup carried (drill.conf or Patroni's)."""
        spec = self.spec(PITR)
        extra = [a for k, v in settings.items() for a in ("-c", f"{k}={v}")]
        return ProcessSpec(name=spec.name, argv=[*spec.argv, *extra], port=spec.port,
                           log=spec.log, cwd=spec.cwd, user=spec.user)

    def _start_pitr(self, recovery: dict[str, str] | None = None) -> MemberRef:
        self._clear_stale_locks(PITR)
        spec = self._pitr_spec({**PITR_OVERRIDES, **(recovery or {})})
        self.sup.start(spec, ready_timeout=PITR_READY_TIMEOUT)
        return self._ref(PITR)

    def _clear_stale_locks(self, name: str) -> None:  # the deployment's own
        raise NotImplementedError

    def pgbackrest_restore(self, target_time: str, label: str | None = None) -> MemberRef:
        """Restore the latest backup (or `label`) into `tsdb-pitr` with pgBackRest,
        replaying archived WAL up to `target_time`, then promoting. Returns once the
        server runs (recovery may still be going on)."""
        self._stop(PITR)
        path = self._wipe(PITR)
        self._write_pgbackrest_config()
        pgbr.run(self.pgbackrest, *pgbr.restore_argv(self.pgbackrest, path, target_time, label),
                 timeout=600.0)
        for leftover in ("standby.signal", "postmaster.pid", "postmaster.opts"):
            (path / leftover).unlink(missing_ok=True)
        return self._start_pitr()

    # -- pg_basebackup (the plain copy of PostgresOps) ------------------------------------

    def base_backup(self, source: str, dest: Path) -> Path:
        self.ensure_stanza()  # the copy is useless without the WAL archived after it
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise StackError(f"backup folder {dest} is not empty")
        self._own(dest, 0o700)
        self._run(
            str(self.bindir / "pg_basebackup"), "-D", str(dest), "-X", "stream", "-c", "fast",
            "-w", "-d", f"host=127.0.0.1 port={self.settings.port(source)} user={PG_USER} "
            "application_name=drill-backup",
        )
        return dest

    def restore_pitr(self, backup: Path, target_time: str) -> MemberRef:
        """Start `tsdb-pitr` from a pg_basebackup copy, fetching WAL from the repository."""
        if not (backup / "PG_VERSION").exists():
            raise StackError(f"{backup} is not a PostgreSQL base backup")
        self._stop(PITR)
        path = self._wipe(PITR)
        self._run("cp", "-a", f"{backup}/.", str(path))
        for leftover in ("standby.signal", "postmaster.pid", "postmaster.opts"):
            (path / leftover).unlink(missing_ok=True)
        (path / "recovery.signal").touch()
        self._own(path / "recovery.signal")
        self._write_pgbackrest_config()
        return self._start_pitr({"restore_command": pgbr.restore_command(self),
                                 "recovery_target_time": target_time,
                                 "recovery_target_action": "promote"})

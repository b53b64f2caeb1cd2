"""PostgreSQL (service `timescaledb`) as supervised local processes.

Topology: `tsdb-0` and `tsdb-1`, one primary and one streaming standby, roles discovered
from the servers (a failover drill may leave tsdb-1 primary). A shared WAL archive feeds
point-in-time restores into the temporary member `tsdb-pitr`.

Drill's settings live in `drill.conf` in each data folder (included by postgresql.conf),
rewritten on every `up()`. ALTER SYSTEM is never used: pg_basebackup would copy its values
into a clone's postgresql.auto.conf, where a promoted standby would inherit them.
PostgreSQL refuses to run as root, so every server and tool runs as the `postgres` user.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

from drillrunner.core.errors import StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.services.common import wait_or_fail
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.local_files import (
    PG_USER,
    PITR,
    RESTART_KEYS,
    STANDING,
    PostgresFiles,
)
from drillrunner.services.timescaledb.local_files import find_bindir as find_bindir
from drillrunner.services.timescaledb.spec import PostgresSettings
from drillrunner.targets.base import MemberRef, Signal
from drillrunner.targets.local.supervisor import (
    command_line,
    pids_working_in,
    process_state,
    signal_all,
)

READY_TIMEOUT = 30.0


class PostgresDeployment(PostgresFiles):
    """The TimescaleDB tier of the local stack; also the driver's `PostgresOps` here."""

    # PostgreSQL's children call setsid(): the postmaster's process group holds only the
    # postmaster, so group signals miss the backends, walsender and walreceiver. Every
    # server process works in its data folder, which identifies them, orphans included.

    def processes(self, member: str) -> list[int]:
        """Live processes of the member, postmaster first."""
        leader = self.sup.pid(member)
        found = [p for p in pids_working_in(self.datadir(member)) if p != leader]
        return ([leader] if leader is not None else []) + found

    def _wait_no_processes(self, member: str, timeout: float = 10.0) -> None:
        """Orphaned backends exit once they notice their postmaster died; a restart on the
        same data folder must wait for them (they hold its shared memory)."""
        try:
            poll_until(lambda: not self.processes(member), timeout=timeout / 2, interval=0.02,
                       what=f"{member}'s processes to exit")
        except WaitTimeout:
            signal_all(self.processes(member), signal.SIGKILL)
            poll_until(lambda: not self.processes(member), timeout=timeout / 2,
                       interval=0.02, what=f"{member}'s processes to exit after SIGKILL")

    def kill(self, member: str, sig: Signal = Signal.KILL) -> None:
        """KILL: every process dies at once, as in a container crash. TERM: a graceful
        stop, PostgreSQL's fast shutdown (SIGINT; its smart SIGTERM shutdown would wait
        for every client to disconnect). Returns once no process of it is left."""
        if sig is Signal.TERM:
            self.resume(member)  # a frozen process cannot shut down
            self.sup.kill(member, signal.SIGINT, timeout=30.0)
        else:
            rest = self.processes(member)[1:]
            self.sup.kill(member, signal.SIGKILL)  # the postmaster first: no new children
            signal_all(rest, signal.SIGKILL)
        self._wait_no_processes(member)

    def pause(self, member: str) -> None:
        """Freeze every process, the postmaster first so it forks no new ones."""
        pids = self.processes(member)
        if not pids:
            raise StackError(f"{member} is not running")
        signal_all(pids, signal.SIGSTOP)
        signal_all(self.processes(member), signal.SIGSTOP)  # any forked meanwhile

    def resume(self, member: str) -> None:
        signal_all(self.processes(member), signal.SIGCONT)

    def pause_process(self, member: str, pid: int) -> None:
        if pid not in self.processes(member):
            raise StackError(f"pid {pid} is not a process of {member}")
        os.kill(pid, signal.SIGSTOP)

    def resume_process(self, member: str, pid: int) -> None:
        if pid in self.processes(member):  # never signal a PID reused by something else
            os.kill(pid, signal.SIGCONT)

    def _clear_stale_locks(self, name: str) -> None:
        """A killed postmaster's lock files name a PID that may linger as a zombie until
        reaped; PostgreSQL would take it for a live server. Remove them when it is dead."""
        if self.sup.pid(name) is not None:
            return
        self._wait_no_processes(name)
        port = self.settings.port(name)
        for lock in (self.datadir(name) / "postmaster.pid",
                     self.sockets / f".s.PGSQL.{port}.lock"):
            try:
                pid = int(lock.read_text().split("\n", 1)[0])
            except (FileNotFoundError, ValueError):
                continue
            if process_state(pid) not in (None, "Z") and b"postgres" in command_line(pid):
                raise StackError(
                    f"{name}: a PostgreSQL server (pid {pid}) not started by drill runs on "
                    f"{self.datadir(name)}; stop it first"
                )
            lock.unlink(missing_ok=True)
            if lock.name.endswith(".lock"):
                (self.sockets / f".s.PGSQL.{port}").unlink(missing_ok=True)

    def _wait_queries(self, name: str, timeout: float = READY_TIMEOUT) -> None:
        import psycopg

        wait_or_fail(lambda: sql.fetch(self.dsn(name), "SELECT 1") == [(1,)],
                     timeout=timeout, interval=0.05, what=f"{name} to accept queries",
                     retry_on=(psycopg.Error,), log=self.spec(name).log)

    def start_member(self, member: str) -> None:
        self._clear_stale_locks(member)
        self.sup.start(self.spec(member), ready_timeout=READY_TIMEOUT)
        self._wait_queries(member)

    def _stop(self, name: str) -> None:
        """Fast shutdown (SIGINT): a smart one (SIGTERM) waits for every client to leave."""
        try:
            self.kill(name, Signal.TERM)
        except StackError:
            self.kill(name, Signal.KILL)
        self._wait_no_processes(name)
        self.sup.stop(name)  # drops the PID record

    def is_paused(self, member: str) -> bool:
        return self.sup.is_paused(member)

    def _in_recovery(self, name: str) -> bool | None:
        """None when the member does not answer."""
        import psycopg

        if self.sup.pid(name) is None or self.sup.is_paused(name):
            return None
        try:
            return bool(sql.fetch_value(self.dsn(name), "SELECT pg_is_in_recovery()"))
        except psycopg.Error:
            return None

    # -- replication ----------------------------------------------------------------------

    def synchronous_wanted(self) -> bool:
        return self.settings.of(PostgresSettings).synchronous

    def set_synchronous(self, member: str, enabled: bool) -> None:
        self._write_conf(member, enabled)
        if self.sup.pid(member) is None:
            return
        want = ", ".join(f'"{p}"' for p in STANDING if p != member) if enabled else ""
        sql.fetch(self.dsn(member), "SELECT pg_reload_conf()")
        sql.wait_setting(self.dsn(member), "synchronous_standby_names", want,
                         what=f"{member} to load synchronous_standby_names={want!r}")

    def _wait_streaming(self, primary: str, replica: str, sync: bool | None = None,
                        timeout: float = 20.0) -> None:
        mode = "" if sync is None else (" synchronously" if sync else " asynchronously")
        poll_until(lambda: sql.streams(self.dsn(primary), replica, sync), timeout=timeout,
                   interval=0.05, what=f"{replica} to stream from {primary}{mode}")

    def rebuild_replica(self, member: str, primary: str) -> None:
        if member == primary:
            raise StackError(f"refusing to rebuild {member}: it is the primary")
        self._stop(member)
        path = self._wipe(member)
        port = self.settings.port(primary)
        self._run(
            str(self.bindir / "pg_basebackup"), "-D", str(path), "-X", "stream", "-c", "fast",
            "-R", "-w",
            "-d", f"host=127.0.0.1 port={port} user={PG_USER} application_name={member}",
        )
        self._write_conf(member, self.synchronous_wanted())
        self.start_member(member)
        self._wait_streaming(primary, member)

    # -- up / down ------------------------------------------------------------------------

    def _choose_primary(self) -> str:
        """Start (or find) the one primary: a running one, else the data folder that is not
        a standby and has the newest timeline (a promoted member beats the one it replaced)."""
        running = {n: self._in_recovery(n) for n in STANDING if self.sup.pid(n) is not None}
        primaries = [n for n, rec in running.items() if rec is False]
        if primaries:
            keep = max(primaries, key=self._timeline)
            for other in primaries:
                if other != keep:
                    self._stop(other)  # split brain: it is rebuilt as a replica below
            return keep
        candidates = [n for n in STANDING if self._has_data(n) and not self._is_standby(n)]
        was_standby = not candidates
        if was_standby:
            # Only standbys are left: the one with the newest timeline becomes primary.
            candidates = [n for n in STANDING if self._has_data(n)]
        chosen = max(candidates, key=self._timeline)
        if was_standby:
            self._stop(chosen)
            (self.datadir(chosen) / "standby.signal").unlink()
        self._write_conf(chosen, self.synchronous_wanted())
        if self.sup.pid(chosen) is None:
            self.start_member(chosen)
        else:
            self._wait_queries(chosen)  # still in crash recovery: it becomes the primary
        return chosen

    def _ensure_replica(self, name: str, primary: str) -> None:
        if not self._has_data(name) or not self._is_standby(name):
            self.rebuild_replica(name, primary)
            return
        try:
            if self.sup.pid(name) is None:
                self._write_conf(name, self.synchronous_wanted())
                self.start_member(name)
            self._wait_streaming(primary, name, timeout=10.0)
        except (StackError, WaitTimeout):
            self.rebuild_replica(name, primary)  # diverged timeline, broken data...

    def _apply_settings(self, name: str) -> None:
        changed = self._write_conf(name, self.synchronous_wanted())
        if not changed or self.sup.pid(name) is None:
            return
        if changed & RESTART_KEYS:
            self._stop(name)
            self.start_member(name)
        else:
            sql.fetch(self.dsn(name), "SELECT pg_reload_conf()")

    def up(self) -> None:
        self._prepare()
        if not any(self._has_data(n) for n in STANDING):
            self._initdb(STANDING[0])
        for name in STANDING:  # a paused member or walreceiver left by a drill: thaw it
            self.resume(name)
        primary = self._choose_primary()
        for name in STANDING:
            if name != primary:
                self._ensure_replica(name, primary)
        for name in STANDING:
            self._apply_settings(name)
        sync = self.synchronous_wanted()
        for name in STANDING:
            if name != primary:
                self._wait_streaming(primary, name, sync=sync)
        self._wait_writable(primary)

    def _wait_writable(self, primary: str, timeout: float = 15.0) -> None:
        sql.wait_writable(self.dsn(primary), timeout=timeout, what=f"{primary} to commit a write")

    def down(self) -> None:
        for name in (*STANDING, PITR):
            self._stop(name)

    # -- backups and point-in-time restore ------------------------------------------------

    def base_backup(self, source: str, dest: Path) -> Path:
        self._prepare()
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
        if not (backup / "PG_VERSION").exists():
            raise StackError(f"{backup} is not a PostgreSQL base backup")
        self._stop(PITR)
        path = self._wipe(PITR)
        self._run("cp", "-a", f"{backup}/.", str(path))
        for leftover in ("standby.signal", "postmaster.pid", "postmaster.opts"):
            (path / leftover).unlink(missing_ok=True)
        (path / "recovery.signal").touch()
        self._own(path / "recovery.signal")
        self._write_conf(PITR, False, recovery_target=target_time)
        self._clear_stale_locks(PITR)
        self.sup.start(self.spec(PITR), ready_timeout=READY_TIMEOUT)
        return self._ref(PITR)

    def remove_member(self, member: str) -> bool:
        if member in STANDING:
            raise StackError(f"{member} is a standing member; only {PITR} can be removed")
        path = self.datadir(member)
        existed = path.exists() or self.sup.pid(member) is not None
        self._stop(member)
        if path.exists():
            shutil.rmtree(path)
        return existed

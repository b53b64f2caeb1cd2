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

import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
from functools import cached_property
from pathlib import Path

from drillrunner.core.errors import MissingBinary, StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.ops import SERVICE
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import MemberRef, Signal
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor, process_state

STANDING = ("tsdb-0", "tsdb-1")
PITR = "tsdb-pitr"
PG_USER = "postgres"
CONF = "drill.conf"
TOOLS = ("postgres", "initdb", "pg_basebackup")
INSTALL = "install the Debian package postgresql-15 (apt-get install postgresql-15)"
# Settings that only take effect after a restart (a reload leaves them pending).
RESTART_KEYS = {
    "shared_preload_libraries", "wal_level", "archive_mode", "max_wal_senders",
    "max_replication_slots", "max_connections", "shared_buffers",
}
READY_TIMEOUT = 30.0


def _q(value: str) -> str:
    """A postgresql.conf string literal."""
    return "'" + value.replace("'", "''") + "'"


def find_bindir() -> Path:
    """The newest Debian-layout bindir, else what `pg_config --bindir` says."""
    candidates = []
    for path in Path("/usr/lib/postgresql").glob("*/bin"):
        if (path / "postgres").exists() and path.parent.name.isdigit():
            candidates.append((int(path.parent.name), path))
    if candidates:
        return max(candidates)[1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        path = Path(out.stdout.strip())
        if out.returncode == 0 and (path / "postgres").exists():
            return path
    raise MissingBinary(f"PostgreSQL server binaries not found: {INSTALL}")


class PostgresDeployment:
    service = SERVICE

    def __init__(self, settings: StackSettings, state: Path, sup: Supervisor) -> None:
        self.settings = settings
        self.state = state
        self.sup = sup
        self.root = state / "timescaledb"
        self.archive = self.root / "wal-archive"
        self.sockets = self.root / "sockets"
        self.logs = self.root / "logs"

    # -- layout ---------------------------------------------------------------------------

    def datadir(self, name: str) -> Path:
        return self.root / name

    def _ref(self, name: str) -> MemberRef:
        return MemberRef(service=SERVICE, name=name, host="127.0.0.1",
                         port=self.settings.port(name))

    def members(self) -> list[MemberRef]:
        return [self._ref(n) for n in STANDING]

    def pitr_member(self) -> MemberRef:
        return self._ref(PITR)

    def spec(self, name: str) -> ProcessSpec:
        port = self.settings.port(name)
        return ProcessSpec(
            name=name,
            argv=[
                str(self.bindir / "postgres"), "-D", str(self.datadir(name)),
                "-c", f"port={port}", "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={self.sockets}",
            ],
            port=port,
            log=self.logs / f"{name}.log",
            cwd=self.root,
            user=PG_USER,
        )

    def dsn(self, member: str, timeout: float = 2.0) -> str:
        return (f"host=127.0.0.1 port={self.settings.port(member)} user={PG_USER} "
                f"dbname=postgres connect_timeout={max(1, round(timeout))}")

    def cluster_dsn(self, timeout: float = 1.0) -> str:
        ports = ",".join(str(self.settings.port(n)) for n in STANDING)
        hosts = ",".join("127.0.0.1" for _ in STANDING)
        return (f"host={hosts} port={ports} user={PG_USER} dbname=postgres "
                f"target_session_attrs=read-write connect_timeout={max(1, round(timeout))}")

    # -- binaries and versions ------------------------------------------------------------

    @cached_property
    def bindir(self) -> Path:
        return find_bindir()

    def check_binaries(self) -> None:
        missing = [t for t in TOOLS if not (self.bindir / t).exists()]
        if missing:
            raise MissingBinary(f"{', '.join(missing)} not found in {self.bindir}: {INSTALL}")

    def _pg_config(self, flag: str) -> Path | None:
        tool = self.bindir / "pg_config"
        if not tool.exists():
            return None
        out = subprocess.run([str(tool), flag], capture_output=True, text=True, check=False)
        return Path(out.stdout.strip()) if out.returncode == 0 else None

    def timescaledb_installed(self) -> bool:
        """The extension must be on disk before start: it has to be preloaded."""
        share, lib = self._pg_config("--sharedir"), self._pg_config("--pkglibdir")
        return bool(
            share and lib and (share / "extension" / "timescaledb.control").exists()
            and any(lib.glob("timescaledb*.so"))
        )

    def versions(self) -> dict[str, str]:
        out = subprocess.run([str(self.bindir / "postgres"), "--version"],
                             capture_output=True, text=True, check=False)
        m = re.search(r"PostgreSQL\)\s+(\S+)", out.stdout)
        pg = f"PostgreSQL {m.group(1) if m else out.stdout.strip()}"
        if not self.timescaledb_installed():
            return {SERVICE: f"{pg} (TimescaleDB extension not installed)"}
        share = self._pg_config("--sharedir")
        control = (share / "extension" / "timescaledb.control").read_text() if share else ""
        v = re.search(r"default_version\s*=\s*'([^']+)'", control)
        return {SERVICE: f"TimescaleDB {v.group(1) if v else '?'} on {pg}"}

    # -- files and processes --------------------------------------------------------------

    @cached_property
    def _pg_ids(self) -> tuple[int, int]:
        try:
            entry = pwd.getpwnam(PG_USER)
        except KeyError:
            raise MissingBinary(f"there is no user {PG_USER!r}: {INSTALL}") from None
        return entry.pw_uid, entry.pw_gid

    def _check_traversable(self) -> None:
        """PostgreSQL runs as `postgres`: every folder above its data must let it through."""
        uid, gid = self._pg_ids
        groups = set(os.getgrouplist(PG_USER, gid))
        for folder in (self.state, *self.state.parents):
            st = folder.stat()
            if st.st_uid == uid:
                ok = bool(st.st_mode & stat.S_IXUSR)
            elif st.st_gid in groups:
                ok = bool(st.st_mode & stat.S_IXGRP)
            else:
                ok = bool(st.st_mode & stat.S_IXOTH)
            if not ok:
                raise StackError(
                    f"PostgreSQL runs as user {PG_USER}, which cannot enter {folder} "
                    f"(mode {stat.filemode(st.st_mode)}); set DRILL_STATE_DIR to a folder it "
                    f"can reach, e.g. DRILL_STATE_DIR=/var/tmp/drill, or chmod o+x {folder}"
                )

    def _own(self, path: Path, mode: int | None = None) -> None:
        uid, gid = self._pg_ids
        os.chown(path, uid, gid)
        if mode is not None:
            path.chmod(mode)

    def _prepare(self) -> None:
        self.check_binaries()
        self.root.mkdir(parents=True, exist_ok=True)
        self._check_traversable()
        self.logs.mkdir(exist_ok=True)  # written by the supervisor (root), not by postgres
        for folder in (self.root, self.archive, self.sockets):
            folder.mkdir(exist_ok=True)
            self._own(folder, 0o755 if folder == self.root else 0o700)

    def _run(self, *argv: str, timeout: float = 120.0) -> None:
        """Run a PostgreSQL tool as the postgres user; raise StackError with its output."""
        try:
            out = subprocess.run(
                list(argv), user=PG_USER, cwd=self.root, capture_output=True, text=True,
                timeout=timeout, check=False,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
            )
        except subprocess.TimeoutExpired:
            raise StackError(f"{Path(argv[0]).name} did not finish within {timeout:g}s") from None
        if out.returncode != 0:
            text = (out.stderr or out.stdout).strip()[-1500:]
            raise StackError(f"{Path(argv[0]).name} failed (exit {out.returncode}): {text}")

    def _has_data(self, name: str) -> bool:
        return (self.datadir(name) / "PG_VERSION").exists()

    def _is_standby(self, name: str) -> bool:
        return (self.datadir(name) / "standby.signal").exists()

    def _timeline(self, name: str) -> int:
        """Highest timeline the data folder knows: a promotion leaves a history file."""
        found = [int(p.name[:8], 16) for p in (self.datadir(name) / "pg_wal").glob("*.history")]
        return max(found, default=1)

    def _wipe(self, name: str) -> Path:
        path = self.datadir(name)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()
        self._own(path, 0o700)
        return path

    def _initdb(self, name: str) -> None:
        path = self._wipe(name)
        # A new cluster: the archive's segments belong to the previous one and would
        # collide with this cluster's segment names.
        shutil.rmtree(self.archive)
        self.archive.mkdir()
        self._own(self.archive, 0o700)
        self._run(str(self.bindir / "initdb"), "-D", str(path), "-U", PG_USER, "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--data-checksums")
        with open(path / "postgresql.conf", "a") as f:
            f.write(f"\n# drill's settings, rewritten on every 'drill stack up'\n"
                    f"include '{CONF}'\n")

    def _conf_text(self, name: str, synchronous: bool, recovery_target: str | None) -> str:
        archive = shlex.quote(str(self.archive))
        dest = f"{archive}/%f"
        lines = {
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "max_connections": "100",
            "shared_buffers": _q("32MB"),
            "wal_keep_size": _q("256MB"),
            "hot_standby": "on",
            "wal_receiver_status_interval": _q("1s"),
            "wal_retrieve_retry_interval": _q("1s"),
            "synchronous_commit": "on",
            "log_line_prefix": _q("%m [%p] %q%a "),
        }
        peers = [p for p in STANDING if p != name]
        lines["synchronous_standby_names"] = _q(
            ", ".join(f'"{p}"' for p in peers) if synchronous and name != PITR else ""
        )
        if recovery_target is None:
            lines["archive_mode"] = "on"
            # Never overwrite an archived segment; re-archiving an identical one succeeds.
            lines["archive_command"] = _q(
                f"test -f {dest} && cmp -s %p {dest} || "
                f"(test ! -f {dest} && cp %p {dest}.tmp && mv {dest}.tmp {dest})"
            )
        else:
            # A restored copy must not archive into the cluster's archive (its new
            # timeline's history file would collide with the real cluster's next one).
            lines["archive_mode"] = "off"
            lines["restore_command"] = _q(f"cp {dest} %p")
            lines["recovery_target_time"] = _q(recovery_target)
            lines["recovery_target_action"] = _q("promote")
        if self.timescaledb_installed():
            lines["shared_preload_libraries"] = _q("timescaledb")
            lines["timescaledb.telemetry_level"] = "off"
        body = "\n".join(f"{k} = {v}" for k, v in lines.items())
        return f"# Written by drill; every 'drill stack up' rewrites it.\n{body}\n"

    def _write_conf(self, name: str, synchronous: bool,
                    recovery_target: str | None = None) -> set[str]:
        """Write the member's drill.conf; return the names of the settings that changed."""
        path = self.datadir(name) / CONF
        new = self._conf_text(name, synchronous, recovery_target)
        old = path.read_text() if path.exists() else ""
        if new == old:
            return set()
        path.write_text(new)
        self._own(path, 0o600)
        before, after = _parse_conf(old), _parse_conf(new)
        return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}

    # PostgreSQL's children call setsid(): the postmaster's process group holds only the
    # postmaster, so group signals miss the backends, walsender and walreceiver. Every
    # server process works in its data folder, which identifies them, orphans included.

    def processes(self, member: str) -> list[int]:
        """Live processes of the member, postmaster first."""
        leader = self.sup.pid(member)
        folder = str(self.datadir(member).resolve())
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == leader:
                continue
            try:
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if cwd == folder and process_state(int(entry.name)) not in (None, "Z"):
                found.append(int(entry.name))
        return ([leader] if leader is not None else []) + sorted(found)

    def _signal_all(self, pids: list[int], sig: signal.Signals) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(pid, sig)

    def _wait_no_processes(self, member: str, timeout: float = 10.0) -> None:
        """Orphaned backends exit once they notice their postmaster died; a restart on the
        same data folder must wait for them (they hold its shared memory)."""
        try:
            poll_until(lambda: not self.processes(member), timeout=timeout / 2, interval=0.02,
                       what=f"{member}'s processes to exit")
        except WaitTimeout:
            self._signal_all(self.processes(member), signal.SIGKILL)
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
            self._signal_all(rest, signal.SIGKILL)
        self._wait_no_processes(member)

    def pause(self, member: str) -> None:
        """Freeze every process, the postmaster first so it forks no new ones."""
        pids = self.processes(member)
        if not pids:
            raise StackError(f"{member} is not running")
        self._signal_all(pids, signal.SIGSTOP)
        self._signal_all(self.processes(member), signal.SIGSTOP)  # any forked meanwhile

    def resume(self, member: str) -> None:
        self._signal_all(self.processes(member), signal.SIGCONT)

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
            if process_state(pid) not in (None, "Z") and _is_postgres(pid):
                raise StackError(
                    f"{name}: a PostgreSQL server (pid {pid}) not started by drill runs on "
                    f"{self.datadir(name)}; stop it first"
                )
            lock.unlink(missing_ok=True)
            if lock.name.endswith(".lock"):
                (self.sockets / f".s.PGSQL.{port}").unlink(missing_ok=True)

    def _wait_queries(self, name: str, timeout: float = READY_TIMEOUT) -> None:
        import psycopg

        try:
            poll_until(lambda: sql.fetch(self.dsn(name), "SELECT 1") == [(1,)],
                       timeout=timeout, interval=0.05, what=f"{name} to accept queries",
                       retry_on=(psycopg.Error,))
        except WaitTimeout as exc:
            raise StackError(f"{exc}; see {self.spec(name).log}") from None

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
        return self.settings.timescaledb.synchronous

    def set_synchronous(self, member: str, enabled: bool) -> None:
        self._write_conf(member, enabled)
        if self.sup.pid(member) is None:
            return
        want = ", ".join(f'"{p}"' for p in STANDING if p != member) if enabled else ""
        sql.fetch(self.dsn(member), "SELECT pg_reload_conf()")
        # The reload is asynchronous: wait until new sessions see the value.
        poll_until(
            lambda: sql.fetch_value(self.dsn(member), "SHOW synchronous_standby_names")
            == want,
            timeout=10, what=f"{member} to load synchronous_standby_names={want!r}",
        )

    def _streaming(self, primary: str, replica: str, sync: bool | None = None) -> bool:
        import psycopg

        try:
            rows = sql.standbys(self.dsn(primary))
        except psycopg.Error:
            return False
        return any(
            s.name == replica and s.state == "streaming"
            and (sync is None or s.sync_state == ("sync" if sync else "async"))
            for s in rows
        )

    def _wait_streaming(self, primary: str, replica: str, sync: bool | None = None,
                        timeout: float = 20.0) -> None:
        mode = "" if sync is None else (" synchronously" if sync else " asynchronously")
        poll_until(lambda: self._streaming(primary, replica, sync), timeout=timeout,
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
        def commit() -> bool:
            with sql.connect(self.dsn(primary), for_writes=True) as conn:
                sql.execute_bounded(conn, sql.WRITE_PROBE, [], 2.0)
            return True

        import psycopg

        poll_until(commit, timeout=timeout, what=f"{primary} to commit a write",
                   retry_on=(psycopg.Error, sql.Indeterminate, sql.Rejected))

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


def _parse_conf(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            out[key.strip()] = value.strip()
    return out


def _is_postgres(pid: int) -> bool:
    try:
        return b"postgres" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False

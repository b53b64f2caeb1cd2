"""The local PostgreSQL deployment's layout and files: data folders, the binaries and
their versions, the `postgres` user's ownership and drill's PostgreSQL settings.

PgBackRestBackups (local_backup.py) adds backups and restores, PostgresDeployment
(local.py) the members under Patroni.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import subprocess
from functools import cached_property
from pathlib import Path

from drillrunner.core.errors import MissingBinary, StackError
from drillrunner.services.timescaledb import pgbackrest
from drillrunner.services.timescaledb.ops import SERVICE
from drillrunner.services.timescaledb.spec import PostgresSettings
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor

STANDING = ("tsdb-0", "tsdb-1")
PITR = "tsdb-pitr"
PG_USER = "postgres"
TOOLS = ("postgres", "initdb", "pg_basebackup")
INSTALL = "install the Debian package postgresql-15 (apt-get install postgresql-15)"
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


class PostgresFiles:
    """Where each member's data, sockets, logs and settings are, and how they are made."""

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

    def _wipe(self, name: str) -> Path:
        path = self.datadir(name)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()
        self._own(path, 0o700)
        return path

    def parameters(self, recovery_target: str | None = None) -> dict[str, str]:
        """drill's PostgreSQL settings (raw values): Patroni writes them into each
        member's postgresql.conf; a restored copy gets them with its recovery target."""
        params = {
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "max_connections": "100",
            "shared_buffers": "32MB",
            "wal_keep_size": "256MB",
            "wal_receiver_status_interval": "1s",
            "wal_retrieve_retry_interval": "1s",
            "synchronous_commit": "on",
            "log_line_prefix": "%m [%p] %q%a ",
        }
        if recovery_target is None:
            params["archive_mode"] = "on"
            params["archive_command"] = pgbackrest.archive_command(
                self, self.settings.of(PostgresSettings).wal_archive)
        else:
            # A restored copy must not archive into the cluster's repository (its new
            # timeline's history file would collide with the real cluster's next one).
            params["archive_mode"] = "off"
            params["restore_command"] = pgbackrest.restore_command(self)
            params["recovery_target_time"] = recovery_target
            params["recovery_target_action"] = "promote"
        if self.timescaledb_installed():
            params["shared_preload_libraries"] = "timescaledb"
            params["timescaledb.telemetry_level"] = "off"
        return params


"""The local PostgreSQL deployment's layout and files: data folders, the binaries and
their versions, the `postgres` user's ownership, initdb and each member's drill.conf.

PostgresDeployment (local.py) adds the processes, replication and backups on top.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
from functools import cached_property
from pathlib import Path

from drillrunner.core.errors import MissingBinary, StackError
from drillrunner.services.timescaledb.ops import SERVICE
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor

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


def _parse_conf(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            out[key.strip()] = value.strip()
    return out

"""Redis on the local target: primary + replica + 3 sentinels as supervised processes.

Layout: `<state>/redis/<member>/` holds `<member>.conf`, `<member>.log` and, for servers,
`data/` (dump.rdb, appendonlydir/). Every server runs in the foreground (daemonize no)
so the supervisor's PID is the server's. Roles are discovered, never assumed: after a
failover redis-1 may be the primary, and a restarted member rejoins the current one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from drillrunner.core.errors import MissingBinary, StackError
from drillrunner.services.redis import client, topology
from drillrunner.services.redis.client import MASTER_NAME
from drillrunner.services.redis.spec import RedisSettings
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor

SERVERS = ("redis-0", "redis-1")
SENTINELS = ("sentinel-0", "sentinel-1", "sentinel-2")
QUORUM = 2
# Sentinel timings for a fast but realistic local drill. Loopback has no jitter, so 1 s
# without a PING reply (Sentinel pings every second) is a sure sign of a dead or frozen
# primary and gives failover in ~2 s; production keeps 5-30 s for real networks.
# failover-timeout 10 s bounds a stuck election before another sentinel retries (and is
# how long a failed failover blocks the next): short enough to finish inside a drill.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 10000
DEFAULT_SAVE = "3600 1 300 100 60 10000"  # Redis's own default RDB save points
READY_TIMEOUT = 60.0
INSTALL = "install the Debian packages redis-server and redis-sentinel " \
          "(apt-get install redis-server redis-sentinel)"
# Lines of a sentinel's own rewritten config worth keeping across restarts: its identity
# and what it already learned, so it need not rediscover the topology from scratch.
_KEEP_SENTINEL = re.compile(
    rf"^sentinel (myid|current-epoch|config-epoch {MASTER_NAME}|leader-epoch {MASTER_NAME}"
    rf"|known-replica {MASTER_NAME}|known-sentinel {MASTER_NAME}) "
)


def _binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists()
                                   else None)
    if found is None:
        raise MissingBinary(f"{name} not found: {INSTALL}")
    return found


class RedisDeployment:
    """The Redis tier of the local stack; also the driver's `RedisOps` on this target."""

    service = "redis"
    master_name = MASTER_NAME

    def __init__(self, settings: StackSettings, state: Path, sup: Supervisor) -> None:
        self.settings = settings
        self.root = state / "redis"
        self.sup = sup

    # -- layout ---------------------------------------------------------------------------

    def members(self) -> list[MemberRef]:
        return self.servers() + self.sentinels()

    def servers(self) -> list[MemberRef]:
        return [self._ref(n, "server") for n in SERVERS]

    def sentinels(self) -> list[MemberRef]:
        return [self._ref(n, "sentinel") for n in SENTINELS]

    def _ref(self, name: str, kind: str) -> MemberRef:
        return MemberRef(service=self.service, name=name, host="127.0.0.1",
                         port=self.settings.port(name), kind=kind)

    def _member(self, name: str) -> MemberRef:
        for m in self.members():
            if m.name == name:
                return m
        raise StackError(f"redis has no member {name!r}")

    def member_dir(self, name: str) -> Path:
        return self.root / name

    def data_dir(self, name: str) -> Path:
        return self.member_dir(name) / "data"

    def conf_path(self, name: str) -> Path:
        return self.member_dir(name) / f"{name}.conf"

    def spec(self, name: str) -> ProcessSpec:
        member = self._member(name)
        binary = "redis-sentinel" if member.kind == "sentinel" else "redis-server"
        return ProcessSpec(
            name=name,
            argv=[_binary(binary), str(self.conf_path(name).resolve())],
            port=member.port,
            log=self.member_dir(name) / f"{name}.log",
            cwd=self.member_dir(name),
        )

    def check_binaries(self) -> None:
        _binary("redis-server")
        _binary("redis-sentinel")

    def versions(self) -> dict[str, str]:
        found = {}
        for binary in ("redis-server", "redis-sentinel"):
            out = subprocess.run([_binary(binary), "--version"], capture_output=True,
                                 text=True, check=False, timeout=10).stdout
            m = re.search(r"v=(\S+)", out)
            found[binary] = m.group(1) if m else out.strip()
        return found

    # -- RedisOps: what the service driver needs from this target ------------------------------

    @property
    def appendonly(self) -> bool:
        return self.settings.of(RedisSettings).appendonly

    def prepare_server(self, name: str, replica_of: MemberRef | None,
                       *, appendonly: bool | None = None) -> None:
        """Write a server's config: primary if `replica_of` is None, else its replica.
        `appendonly` overrides the stack setting (a restore loads an RDB with AOF off)."""
        member = self._member(name)
        aof = self.appendonly if appendonly is None else appendonly
        data = self.data_dir(name)
        data.mkdir(parents=True, exist_ok=True)
        lines = [
            f"bind {member.host}",
            f"port {member.port}",
            "daemonize no",
            'logfile ""',
            f"dir {data.resolve()}",
            "dbfilename dump.rdb",
            f"appendonly {'yes' if aof else 'no'}",
            f"appendfsync {self.settings.of(RedisSettings).appendfsync}",
            'appenddirname "appendonlydir"',
            # One replica: the default 5 s wait for more replicas before a full sync only
            # delays every rejoin (measured: 5.4 s to rejoin, then 0.x s without it).
            "repl-diskless-sync-delay 0",
            # AOF off means no persistence at all (the broken variant drills must catch).
            f"save {DEFAULT_SAVE}" if self.appendonly else 'save ""',
        ]
        if replica_of is not None and replica_of.name != name:
            lines.append(f"replicaof {replica_of.host} {replica_of.port}")
        self._write(name, lines)

    def prepare_sentinel(self, name: str, master: MemberRef, *, fresh: bool = False) -> None:
        """Write a sentinel's config monitoring `master`. What the sentinel learned itself
        is kept when it already monitors that master (and `fresh` is not asked)."""
        member = self._member(name)
        path = self.conf_path(name)
        monitor = f"sentinel monitor {MASTER_NAME} {master.host} {master.port} {QUORUM}"
        kept: list[str] = []
        if path.exists() and not fresh:
            old = path.read_text().splitlines()
            same = any(line.startswith(monitor) for line in old)
            kept = [ln for ln in old if _KEEP_SENTINEL.match(ln) and
                    (same or ln.startswith(("sentinel myid", "sentinel current-epoch")))]
        self._write(name, [
            f"bind {member.host}",
            f"port {member.port}",
            "daemonize no",
            'logfile ""',
            f"dir {self.member_dir(name).resolve()}",
            monitor,
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
            *kept,
        ])

    def _write(self, name: str, lines: list[str]) -> None:
        path = self.conf_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written fresh, writable: Sentinel (and CONFIG REWRITE) rewrite these files.
        path.write_text("# written by drill; Redis may rewrite it\n" + "\n".join(lines) + "\n")

    def has_data(self, name: str) -> bool:
        data = self.data_dir(name)
        return data.is_dir() and any(data.iterdir())

    def wipe(self, name: str) -> None:
        """Remove a stopped member's data (server) or learned state (sentinel)."""
        if self.sup.pid(name) is not None:
            raise StackError(f"{name} is running: stop it before wiping its data")
        member = self._member(name)
        if member.kind == "sentinel":
            self.conf_path(name).unlink(missing_ok=True)
        else:
            shutil.rmtree(self.data_dir(name), ignore_errors=True)
            self.data_dir(name).mkdir(parents=True)

    def copy_out(self, name: str, dest: Path) -> list[str]:
        """Copy a server's dump.rdb and AOF directory into `dest`; names of what was copied."""
        dest.mkdir(parents=True, exist_ok=True)
        data = self.data_dir(name)
        copied = []
        if (data / "dump.rdb").exists():
            shutil.copy2(data / "dump.rdb", dest / "dump.rdb")
            copied.append("dump.rdb")
        if (data / "appendonlydir").is_dir():
            shutil.copytree(data / "appendonlydir", dest / "appendonlydir", dirs_exist_ok=True)
            copied.append("appendonlydir")
        return copied

    def copy_in(self, name: str, src: Path) -> None:
        """Put a snapshot's dump.rdb into a stopped server's data folder."""
        if self.sup.pid(name) is not None:
            raise StackError(f"{name} is running: stop it before restoring into it")
        if not (src / "dump.rdb").exists():
            raise StackError(f"{src} holds no dump.rdb to restore")
        data = self.data_dir(name)
        data.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / "dump.rdb", data / "dump.rdb")

    def hold(self, name: str) -> None:
        """Nothing to do: a killed local member stays down until it is started again."""
        self._member(name)

    def member_for(self, host: str, port: int) -> MemberRef | None:
        """Members are addressed as they address each other: an exact match."""
        return next((m for m in self.members() if (m.host, m.port) == (host, port)), None)

    def current_master(self) -> MemberRef:
        """The primary as the running sentinels, then the running servers, then the
        sentinels' own config files (they record failovers) know it; else redis-0."""
        servers = self.servers()
        by_port = {s.port: s for s in servers}  # every member is on 127.0.0.1
        return topology.discover_master(
            servers, voted=topology.sentinel_master(servers, self._running(self.sentinels())),
            says_master=self._says_master, sentinel_files=self._sentinel_files(),
            name=MASTER_NAME, member_for=lambda _host, port: by_port.get(port),
        )

    def _running(self, members: list[MemberRef]) -> list[MemberRef]:
        return [m for m in members if self.sup.pid(m.name) is not None]

    def _says_master(self, server: MemberRef) -> bool:
        if self.sup.pid(server.name) is None:
            return False
        try:
            return bool(client.info(server, "replication").get("role") == "master")
        except Exception:
            return False

    def _sentinel_files(self) -> Iterator[str]:
        for name in SENTINELS:
            path = self.conf_path(name)
            if path.exists():
                yield path.read_text()

    # -- lifecycle ------------------------------------------------------------------------

    def up(self) -> None:
        self.check_binaries()
        master = self.current_master()
        servers = sorted(self.servers(), key=lambda s: s.name != master.name)
        for server in servers:
            if self.sup.pid(server.name) is not None:
                fsync = self.settings.of(RedisSettings).appendfsync
                topology.apply_persistence(server, self.appendonly, fsync, DEFAULT_SAVE)
                # Keep the file in step for the next start, with the live role.
                role = client.info(server, "replication").get("role")
                self.prepare_server(server.name, None if role == "master" else master)
            else:
                self.prepare_server(server.name, None if server.name == master.name else master)
                self.sup.start(self.spec(server.name))
        for sentinel in self.sentinels():
            if self.sup.pid(sentinel.name) is None:
                self.prepare_sentinel(sentinel.name, master)
                self.sup.start(self.spec(sentinel.name))
        topology.wait_ready(self.servers(), self.sentinels(), timeout=READY_TIMEOUT)

    def down(self) -> None:
        # Sentinels first, so none starts a failover while the servers stop.
        for member in [*self.sentinels(), *reversed(self.servers())]:
            self.sup.stop(member.name)

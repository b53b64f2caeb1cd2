"""RedisOps on kind: the servers (StatefulSet `redis`) and sentinels (`redis-sentinel`) of
deploy/k8s/redis, worked on through exec in their pods (redis-cli and busybox sh of the
redis:7.2-alpine image) and files on their volumes (/data, /sentinel).

Stopped members. Deleting a pod does not stop a member on kind: its StatefulSet recreates
it at once, and a recreated server joins the master the sentinels name (the manifests'
startup script). So a member whose data is replaced is *held* (the target's hold file,
targets/kind/hold.py: `.drill-hold` on its volume): the following kill recreates the pod,
and the pod's startup script waits while the file exists (no Redis process, readiness
fails, so `is_running` is False, the liveness probe passes). wipe/copy_in act only on a
held member; prepare_server / prepare_sentinel write what the next start needs onto the
volume and release it, so the driver's `target.start` (wait until Ready) brings it up.
Scaling the StatefulSet to 0 was not used: it stops every ordinal from the top, and a
volume without a pod cannot be reached through exec. A hold survives pod deletion and a
crashed drill; the undo paths (`redis.recover_tier`, `redis.restart_all`) release it
through prepare_*. A hold whose kill never came (a crash in between) is dropped by the
next prepare_* of the running member.

Addresses. Servers and sentinels name each other by in-cluster DNS name
(`redis-0.redis-headless.drill.svc.cluster.local:6379`: the manifests' announce settings)
or by pod IP; the driver reaches members through 127.0.0.1 port-forwards. `member_for`
maps the former to the member.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from drillrunner.core.errors import ActionFailed
from drillrunner.services.redis import topology
from drillrunner.services.redis.kind_pods import (
    SERVER_PORT,
    KindRedisPods,
)
from drillrunner.targets.base import MemberRef
from drillrunner.targets.pods import HoldState, KindPods

CONFIGMAP = "redis-config"
START_ARGS = ".drill-start-args"  # one-shot redis-server arguments, read by the startup script
QUORUM = 2


class KindRedisOps(KindRedisPods):
    """RedisOps for the pods of deploy/k8s/redis (master name `drill-redis`)."""

    master_name = "drill-redis"

    def __init__(self, target: KindPods, service: str) -> None:
        super().__init__(target, service)
        # Servers this drill started with a persistence override (a restore loads the RDB
        # with AOF off): their live setting is not what the stack means to run.
        self._overridden: set[str] = set()
        self._appendonly: bool | None = None

    # -- RedisOps ----------------------------------------------------------------------

    @property
    def appendonly(self) -> bool:
        """Whether the stack runs with AOF: read once (see `_read_appendonly`) and kept for
        this run, so a restore turns AOF back on as it was before the drill. Never raises,
        and does I/O once: Python 3.11's isinstance(ops, RedisOps) reads it. Unknown (no
        server answers, no ConfigMap): True, as the manifests run it."""
        if self._appendonly is None:
            self._appendonly = self._read_appendonly()
        return True if self._appendonly is None else self._appendonly

    def _read_appendonly(self) -> bool | None:
        """CONFIG GET appendonly of a running server not started with a drill override,
        else the ConfigMap's redis.conf (what every start without one uses)."""
        try:
            servers = self.servers()
        except Exception:  # read from isinstance(): an API failure must not escape
            return None
        for server in servers:
            try:
                if server.name in self._overridden or not self.target.is_running(server):
                    continue
                reply = self._cli(server, "config", "get", "appendonly").split()
            except Exception:
                continue
            if len(reply) == 2:
                return reply[1] == "yes"
        try:
            conf = (self.target.read_config(CONFIGMAP) or {}).get("redis.conf")
        except Exception:
            return None
        if conf is None:
            return None
        found = re.findall(r"^\s*appendonly\s+(\S+)", conf, re.M)
        return bool(found) and found[-1].strip("\"'").lower() == "yes"  # Redis: off

    def current_master(self) -> MemberRef:
        """The primary as the running sentinels, then the running servers, then the
        sentinels' state files (they record failovers) know it; else the first server."""
        servers = self.servers()
        if not servers:
            raise ActionFailed("no Redis server pods found")
        return topology.discover_master(
            servers, voted=topology.most_named(servers, (self._named_by(s)
                                                         for s in self.sentinels())),
            says_master=self._says_master, sentinel_files=self._sentinel_files(),
            name=self.master_name, member_for=self.member_for)

    def _named_by(self, sentinel: MemberRef) -> MemberRef | None:
        if not self.target.is_running(sentinel):
            return None
        try:
            reply = self._cli(sentinel, "sentinel", "get-master-addr-by-name",
                              self.master_name).split()
        except ActionFailed:
            return None
        found = (self.member_for(reply[0], int(reply[1]))
                 if len(reply) == 2 and reply[1].isdigit() else None)
        return found if found is not None and found.kind == "server" else None

    def _says_master(self, server: MemberRef) -> bool:
        if not self.target.is_running(server):
            return False
        try:
            return "role:master" in self._cli(server, "info", "replication")
        except ActionFailed:
            return False

    def _sentinel_files(self) -> Iterator[str]:
        for sentinel in self.sentinels():
            try:  # held sentinels too: only the process is down, the file is there
                yield self._sh_when_up(sentinel, f"cat {self._dir(sentinel)}/sentinel.conf "
                                       "2>/dev/null || true", "reading sentinel.conf")
            except ActionFailed:
                continue

    def hold(self, name: str) -> None:
        """Mark the member's volume so its next start waits (see the module docstring);
        idempotent. The running process is untouched: the caller kills it."""
        self.target.hold(self._ref(name), wait=self.wait)

    def prepare_server(self, name: str, replica_of: MemberRef | None, *,
                       appendonly: bool | None = None) -> None:
        """A held server: write its one-shot start arguments (role; AOF override) and
        release it. A running one: set the role live (REPLICAOF) and AOF (CONFIG SET) where
        they differ: its next start takes the role from the sentinels anyway. One being
        recreated: its startup script asks the sentinels; an AOF override is refused."""
        member = self._ref(name)
        if member.kind == "sentinel":
            raise ActionFailed(f"{name} is a sentinel, not a Redis server")
        if replica_of is not None and replica_of.name == name:
            replica_of = None
        if self.target.is_running(member):
            self._release(member)  # a hold never followed by its kill (a crashed drill)
            self._apply_live(member, replica_of, appendonly)
            return
        if self._settled_state(member) != HoldState.HELD:
            if appendonly is not None:
                raise ActionFailed(f"{name} is starting on its own: a persistence override "
                                   "needs it held down (hold, then kill)")
            return  # the startup script joins the master the sentinels name
        args: list[str] = []
        if appendonly is not None:
            args += ["--appendonly", "yes" if appendonly else "no"]
            self._overridden.add(name)
        else:
            self._overridden.discard(name)
        if replica_of is not None:
            args += ["--replicaof", self.in_cluster(replica_of), str(SERVER_PORT)]
        self.target.write_file(member, f"{self._dir(member)}/{START_ARGS}",
                               (" ".join(args) + "\n").encode())
        self._release(member)

    def _apply_live(self, member: MemberRef, replica_of: MemberRef | None,
                    appendonly: bool | None) -> None:
        info = dict(line.split(":", 1) for line in
                    self._cli(member, "info", "replication").splitlines() if ":" in line)
        current: MemberRef | None = None
        if info.get("role", "").strip() == "slave":
            current = self.member_for(info.get("master_host", "").strip(),
                                      int(info.get("master_port", "0").strip() or 0))
        want = replica_of.name if replica_of is not None else None
        is_primary = info.get("role", "").strip() == "master"
        if want is None and not is_primary:
            self._cli(member, "replicaof", "no", "one")
        elif want is not None and (current is None or current.name != want):
            assert replica_of is not None
            self._cli(member, "replicaof", self.in_cluster(replica_of), str(SERVER_PORT))
        if appendonly is None:
            self._overridden.discard(member.name)
            return
        reply = self._cli(member, "config", "get", "appendonly").split()
        value = "yes" if appendonly else "no"
        if reply[-1:] != [value]:
            self._cli(member, "config", "set", "appendonly", value)

    def prepare_sentinel(self, name: str, master: MemberRef, *, fresh: bool = False) -> None:
        """A held sentinel: write its state file from the ConfigMap's sentinel.conf
        monitoring `master` (kept as it is when it already monitors `master` and `fresh`
        is not asked) and release it. A running one with `fresh`: SENTINEL REMOVE and
        MONITOR with the ConfigMap's settings; without, nothing (it follows the quorum)."""
        member = self._ref(name)
        if member.kind != "sentinel":
            raise ActionFailed(f"{name} is a Redis server, not a sentinel")
        host = self.in_cluster(master)
        if self.target.is_running(member):
            self._release(member)  # a hold never followed by its kill (a crashed drill)
            if fresh:
                self._remonitor(member, host)
            return
        if self._settled_state(member) != HoldState.HELD:
            if fresh:
                raise ActionFailed(f"{name} is starting on its own: forgetting its state "
                                   "needs it held down (hold, then kill)")
            return  # it starts from its own state file (seeded from the ConfigMap)
        path = f"{self._dir(member)}/sentinel.conf"
        old = self._sh(member, f"cat {path} 2>/dev/null || true", "reading sentinel.conf")
        monitor = f"sentinel monitor {self.master_name} {host} {SERVER_PORT} "
        if fresh or not any(line.startswith(monitor) for line in old.splitlines()):
            kept = [] if fresh else [line for line in old.splitlines() if line.startswith(
                ("sentinel myid ", "sentinel current-epoch "))]
            self.target.write_file(member, path, self._sentinel_conf(host, kept).encode())
        self._release(member)

    def _seed(self) -> list[str]:
        seed = (self.target.read_config(CONFIGMAP) or {}).get("sentinel.conf")
        if seed is None:
            raise ActionFailed(f"ConfigMap {CONFIGMAP} has no sentinel.conf")
        return seed.splitlines()

    def _sentinel_conf(self, host: str, kept: list[str]) -> str:
        prefix = f"sentinel monitor {self.master_name} "
        lines = [f"{prefix}{host} {SERVER_PORT} {QUORUM}" if line.startswith(prefix) else line
                 for line in self._seed()]
        return "\n".join([*lines, *kept]) + "\n"

    def _remonitor(self, member: MemberRef, host: str) -> None:
        try:
            self._cli(member, "sentinel", "remove", self.master_name)
        except ActionFailed as exc:
            if "No such master" not in str(exc):
                raise
        self._cli(member, "sentinel", "monitor", self.master_name, host, str(SERVER_PORT),
                  str(QUORUM))
        prefix = f"sentinel monitor {self.master_name} "
        for line in self._seed():
            parts = line.split()
            if (len(parts) == 4 and parts[0] == "sentinel" and parts[2] == self.master_name
                    and not line.startswith(prefix)):
                self._cli(member, "sentinel", "set", self.master_name, parts[1], parts[3])

    def has_data(self, name: str) -> bool:
        """Whether a server's /data holds anything but drill's own files (a sentinel has no
        data, as on the local target)."""
        member = self._ref(name)
        if member.kind == "sentinel":
            return False
        data = self._dir(member)
        out = self._sh_when_up(
            member, f"find {shlex.quote(data)} -mindepth 1 -maxdepth 1 "
            "! -name '.drill-*' ! -name lost+found | head -n 1; echo .", f"listing {data}")
        return out.strip() != "."

    def wipe(self, name: str) -> None:
        """Delete a held server's data (all of /data but the hold file) or a held
        sentinel's state file."""
        member = self._ref(name)
        self._require_held(member, "wiping its data")
        folder = shlex.quote(self._dir(member))
        hold = shlex.quote(posixpath.basename(self.target.hold_path(member)))
        if member.kind == "sentinel":
            script = f"rm -f {folder}/sentinel.conf"
        else:
            script = f"find {folder} -mindepth 1 -maxdepth 1 ! -name {hold} -exec rm -rf {{}} +"
        self._sh(member, script, f"wiping {self._dir(member)}")
        self._overridden.discard(name)

    def copy_out(self, name: str, dest: Path) -> list[str]:
        """Copy a server's dump.rdb and appendonlydir/ into `dest` (base64 over exec);
        names of what was copied."""
        member = self._ref(name)
        data = self._dir(member)
        listing = self._sh(member, f"cd {shlex.quote(data)} && {{ [ ! -f dump.rdb ] || "
                           "echo dump.rdb; [ ! -d appendonlydir ] || find appendonlydir "
                           "-type f; }", f"listing {data}")
        files = [f for f in listing.splitlines() if f]
        dest.mkdir(parents=True, exist_ok=True)
        for rel in files:
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(self.target.read_file(member, f"{data}/{rel}"))
        return [n for n in ("dump.rdb", "appendonlydir")
                if any(f == n or f.startswith(n + "/") for f in files)]

    def copy_in(self, name: str, src: Path) -> None:
        """Put a snapshot's dump.rdb into a held server's /data."""
        member = self._ref(name)
        if not (src / "dump.rdb").exists():
            raise ActionFailed(f"{src} holds no dump.rdb to restore")
        self._require_held(member, "restoring into it")
        self.target.write_file(member, f"{self._dir(member)}/dump.rdb",
                               (src / "dump.rdb").read_bytes())

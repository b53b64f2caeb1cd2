"""Who is primary, who replicates, whether the sentinels agree: always asked of the servers."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from drillrunner.core.waiting import poll_until
from drillrunner.services.common import wait_verdict
from drillrunner.services.paused import is_stopped
from drillrunner.services.redis import client
from drillrunner.targets.base import MemberRef, Target

if TYPE_CHECKING:
    from drillrunner.services.redis.ops import RedisOps

SERVICE = "redis"


class Role(StrEnum):
    PRIMARY = "primary"
    REPLICA = "replica"
    SENTINEL = "sentinel"
    DOWN = "down"
    PAUSED = "paused"
    UNRESPONSIVE = "unresponsive"


def servers_of(target: Target) -> list[MemberRef]:
    return [m for m in target.members(SERVICE) if m.kind != "sentinel"]


def sentinels_of(target: Target) -> list[MemberRef]:
    return [m for m in target.members(SERVICE) if m.kind == "sentinel"]




def member_role(target: Target, member: MemberRef) -> Role:
    if not target.is_running(member):
        return Role.DOWN
    if is_stopped(target, member):
        return Role.PAUSED
    try:
        if member.kind == "sentinel":
            conn = client.connect_member(member)
            try:
                conn.ping()
            finally:
                conn.close()
            return Role.SENTINEL
        role = client.info(member, "replication").get("role")
    except Exception:
        # SIGSTOP takes effect asynchronously: look again once the query has timed out.
        return Role.PAUSED if is_stopped(target, member) else Role.UNRESPONSIVE
    return Role.PRIMARY if role == "master" else Role.REPLICA


def member_roles(target: Target) -> dict[str, str]:
    """Live role of every Redis member by name: primary, replica, sentinel, down, paused
    (SIGSTOPped) or unresponsive (running but silent within the probe timeout)."""
    return {m.name: str(member_role(target, m)) for m in target.members(SERVICE)}


def master_name(ops: RedisOps | None) -> str:
    return ops.master_name if ops is not None else client.MASTER_NAME


def locate(servers: list[MemberRef], host: str, port: int,
           ops: RedisOps | None = None) -> MemberRef | None:
    """The server a sentinel or replica names by `host`:`port`. Without `ops`, an exact
    match on the address; with it, mapped by the target (kind: an in-cluster name or pod
    IP and 6379, while the driver reaches the pod through a local port-forward)."""
    found = ops.member_for(host, port) if ops is not None else None
    for server in servers:
        if found is not None and server.name == found.name:
            return server
        if ops is None and (server.host, server.port) == (host, port):
            return server
    return None


def sentinel_master(
    servers: list[MemberRef], sentinels: list[MemberRef], ops: RedisOps | None = None
) -> MemberRef | None:
    """The server most answering sentinels name as master (None if none answers)."""

    def named_by(sentinel: MemberRef) -> MemberRef | None:
        try:
            addr = client.sentinel_master_addr(sentinel, master_name(ops))
        except Exception:
            return None
        return locate(servers, *addr, ops) if addr is not None else None

    return most_named(servers, (named_by(s) for s in sentinels))


def most_named(servers: list[MemberRef], named: Iterable[MemberRef | None]) -> MemberRef | None:
    """The server named most often among `named` (the first named wins a tie); None if
    none names one of `servers`."""
    votes = Counter(m.name for m in named if m is not None)
    for name, _ in votes.most_common():
        found = next((s for s in servers if s.name == name), None)
        if found is not None:
            return found
    return None


def master_in_files(servers: list[MemberRef], texts: Iterable[str], name: str,
                    member_for: Callable[[str, int], MemberRef | None]) -> MemberRef | None:
    """The master the sentinels' own config files monitor: Sentinel rewrites them on a
    failover, and the file with the highest config-epoch records the latest one."""
    best: tuple[int, MemberRef] | None = None
    quoted = re.escape(name)
    for text in texts:
        m = re.search(rf"^sentinel monitor {quoted} (\S+) (\d+)", text, re.M)
        e = re.search(rf"^sentinel config-epoch {quoted} (\d+)", text, re.M)
        found = member_for(m.group(1), int(m.group(2))) if m else None
        server = next((s for s in servers if found is not None and s.name == found.name), None)
        if server is not None:
            epoch = int(e.group(1)) if e else 0
            if best is None or epoch > best[0]:
                best = (epoch, server)
    return best[1] if best else None


def discover_master(
    servers: list[MemberRef], *, voted: MemberRef | None,
    says_master: Callable[[MemberRef], bool], sentinel_files: Iterable[str], name: str,
    member_for: Callable[[str, int], MemberRef | None],
) -> MemberRef:
    """The primary as the running sentinels (`voted`), then the running servers
    (`says_master`: False for one that is down or silent), then the sentinels' config
    files know it; else the first server. Iterables are read only when reached."""
    if voted is not None:
        return voted
    for server in servers:
        if says_master(server):
            return server
    return master_in_files(servers, sentinel_files, name, member_for) or servers[0]


@dataclass(frozen=True)
class Readiness:
    """Real readiness: one primary with an online replica, sentinels agreeing on it and
    knowing the replica and each other. `problems` says what is missing."""

    master: str | None
    replicas_linked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lag_bytes: int | None = None

    @property
    def ready(self) -> bool:
        return not self.problems


def readiness(servers: list[MemberRef], sentinels: list[MemberRef],
              ops: RedisOps | None = None) -> Readiness:
    """`ops` maps the addresses servers and sentinels report to members (see locate)."""
    problems: list[str] = []
    infos: dict[str, dict[str, Any]] = {}
    for server in servers:
        try:
            infos[server.name] = client.info(server, "replication")
        except Exception as exc:
            problems.append(f"{server.name} does not answer ({type(exc).__name__})")
    masters = [n for n, i in infos.items() if i.get("role") == "master"]
    if len(masters) != 1:
        problems.append(f"expected one primary, found {masters or 'none'}")
        return Readiness(None, [], problems)
    master = next(s for s in servers if s.name == masters[0])
    linked = [
        n for n, i in infos.items()
        if i.get("role") == "slave" and i.get("master_link_status") == "up"
        and _names(master, str(i.get("master_host", "")), int(i.get("master_port", 0)), ops)
    ]
    if not linked:
        problems.append(f"no replica has its link to {master.name} up")
    lag = replica_lag_bytes(infos[master.name])
    for sentinel in sentinels:
        try:
            state = client.sentinel_master(sentinel, master_name(ops))
        except Exception as exc:
            problems.append(f"{sentinel.name} does not answer ({type(exc).__name__})")
            continue
        if not _names(master, str(state.get("ip", "")), int(state.get("port", 0)), ops):
            problems.append(f"{sentinel.name} names port {state.get('port')} as master")
        if state.get("flags") != "master":
            problems.append(f"{sentinel.name} flags the master {state.get('flags')}")
        if int(state.get("num-slaves", 0)) < 1:
            problems.append(f"{sentinel.name} knows no replica yet")
        if int(state.get("num-other-sentinels", 0)) < len(sentinels) - 1:
            problems.append(f"{sentinel.name} has not discovered the other sentinels yet")
    return Readiness(master.name, linked, problems, lag)


def _names(member: MemberRef, host: str, port: int, ops: RedisOps | None) -> bool:
    """Whether `host`:`port`, as a server or sentinel reports it, is `member` (without
    `ops`: the port alone, every local member being on 127.0.0.1)."""
    if ops is None:
        return port == member.port
    return locate([member], host, port, ops) is not None


def replica_lag_bytes(master_info: dict[str, Any]) -> int | None:
    """Bytes of replication stream the best online replica has not acknowledged."""
    offset = int(master_info.get("master_repl_offset", 0))
    lags = [
        offset - int(v.get("offset", 0))
        for k, v in master_info.items()
        if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
    ]
    return max(0, min(lags)) if lags else None


def wait_ready(
    servers: list[MemberRef], sentinels: list[MemberRef], *, timeout: float,
    ops: RedisOps | None = None
) -> Readiness:
    return wait_verdict(lambda: readiness(servers, sentinels, ops), timeout=timeout,
                        interval=0.1, what="the Redis tier to be ready")


def apply_persistence(server: MemberRef, appendonly: bool, appendfsync: str,
                      default_save: str, timeout: float = 30.0) -> bool:
    """Bring a running server's persistence in line with the settings (CONFIG SET).
    Turning AOF on makes Redis rewrite the AOF from memory: wait until that is done.
    True if anything changed."""
    conn = client.connect_member(server, timeout=2.0)
    try:
        current = {k: str(v) for k, v in conn.config_get("appendonly").items()}
        current.update({k: str(v) for k, v in conn.config_get("appendfsync").items()})
        current.update({k: str(v) for k, v in conn.config_get("save").items()})
        want = {
            "appendfsync": appendfsync,
            "save": default_save if appendonly else "",
            "appendonly": "yes" if appendonly else "no",
        }
        changed = {k: v for k, v in want.items() if current.get(k) != v}
        for key, value in changed.items():  # appendonly last: the rest is set before it
            conn.config_set(key, value)
    finally:
        conn.close()
    if changed.get("appendonly") == "yes":
        wait_aof_written(server, timeout)
    return bool(changed)


def wait_aof_written(server: MemberRef, timeout: float) -> None:
    def done() -> bool:
        p = client.info(server, "persistence")
        return (int(p["aof_enabled"]) == 1 and int(p["aof_rewrite_in_progress"]) == 0
                and int(p["aof_rewrite_scheduled"]) == 0
                and p["aof_last_bgrewrite_status"] == "ok")

    poll_until(done, timeout=timeout, interval=0.05,
               what=f"{server.name} to write its AOF", retry_on=(Exception,))

"""Who leads the stream, which replicas are current, whether the cluster is ready: always
asked of the servers (HTTP monitoring and the JetStream API), never assumed."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from drillrunner.core.errors import ActionFailed
from drillrunner.core.waiting import poll_until
from drillrunner.services.common import wait_verdict
from drillrunner.services.nats import client
from drillrunner.services.nats.ops import NatsOps, nats_ops
from drillrunner.services.paused import Processes, is_stopped
from drillrunner.targets.base import MemberRef, Target

SERVICE = "nats"


class Role(StrEnum):
    LEADER = "stream-leader"  # leader of the drill stream's Raft group
    REPLICA = "stream-replica"  # follower holding a replica of the drill stream
    NODE = "node"  # healthy, but holding no replica of the drill stream (R1, R2)
    DOWN = "down"
    PAUSED = "paused"
    UNRESPONSIVE = "unresponsive"






def reachable(target: Processes, ops: NatsOps) -> list[MemberRef]:
    """Nodes that run and are not frozen: a frozen node accepts TCP but never answers."""
    return [m for m in ops.servers() if target.is_running(m) and not is_stopped(target, m)]


def client_urls(target: Target, ops: NatsOps | None = None) -> list[str]:
    ops = ops or nats_ops(target)
    return client.urls([m.port for m in reachable(target, ops)])


def healthz(ops: NatsOps, member: MemberRef, timeout: float = client.PROBE_TIMEOUT) -> str:
    """"ok", or what /healthz says is wrong (JetStream not current, stream not healthy...)."""
    try:
        status, body = client.monitor(ops.monitor_port(member.name), "/healthz", timeout)
    except OSError as exc:
        return f"no answer ({type(exc).__name__})"
    if status == 200 and body.get("status") == "ok":
        return "ok"
    return str(body.get("error") or body.get("status") or f"HTTP {status}")


def meta_leader(ops: NatsOps, member: MemberRef) -> str | None:
    """The JetStream meta leader as `member` sees it (None if none is elected)."""
    try:
        _, body = client.monitor(ops.monitor_port(member.name), "/jsz")
    except OSError:
        return None
    meta: dict[str, Any] = body.get("meta_cluster") or {}
    leader = meta.get("leader")
    return str(leader) if leader else None


@dataclass(frozen=True)
class Readiness:
    """Real readiness: every node healthy, a meta leader, the drill stream with a leader
    and every replica current. `problems` says what is missing."""

    meta_leader: str | None = None
    stream_leader: str | None = None
    replicas: dict[str, bool] = field(default_factory=dict)  # follower -> current
    configured_replicas: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems

    @property
    def current_peers(self) -> int:
        """Stream peers able to serve: the leader plus current followers."""
        return (1 if self.stream_leader else 0) + sum(self.replicas.values())


def readiness(target: Processes, ops: NatsOps, *, want_replicas: int | None = None) -> Readiness:
    problems: list[str] = []
    healthy: list[MemberRef] = []
    for m in ops.servers():
        if not target.is_running(m):
            problems.append(f"{m.name} is down")
        elif is_stopped(target, m):
            problems.append(f"{m.name} is paused")
        elif (h := healthz(ops, m)) != "ok":
            problems.append(f"{m.name} /healthz: {h}")
        else:
            healthy.append(m)
    leaders = {meta_leader(ops, m) for m in healthy}
    meta = next(iter(leaders)) if len(leaders) == 1 else None
    if meta is None:
        problems.append(f"no agreed JetStream meta leader (seen: {sorted(map(str, leaders))})")
    try:
        info = client.stream_info(client.urls([m.port for m in healthy or ops.servers()]))
    except Exception as exc:
        problems.append(f"stream {client.STREAM}: no info ({type(exc).__name__}: {exc})")
        return Readiness(meta, None, {}, None, problems)
    cluster = info.cluster
    leader = cluster.leader if cluster else None
    replicas = {str(p.name): bool(p.current and not p.offline)
                for p in (cluster.replicas or [] if cluster else [])}
    configured = info.config.num_replicas
    if not leader:
        problems.append(f"stream {client.STREAM} has no leader")
    behind = sorted(n for n, ok in replicas.items() if not ok)
    if behind:
        problems.append(f"stream replicas not current: {', '.join(behind)}")
    want = want_replicas if want_replicas is not None else ops.stream_spec().replicas
    if configured != want or len(replicas) + (1 if leader else 0) != want:
        problems.append(f"stream has {len(replicas) + (1 if leader else 0)} of {want} "
                        f"replicas placed (configured R{configured})")
    return Readiness(meta, leader, replicas, configured, problems)


def wait_ready(target: Processes, ops: NatsOps, *, timeout: float) -> Readiness:
    return wait_verdict(lambda: readiness(target, ops), timeout=timeout, interval=0.1,
                        what="the NATS cluster and its stream to be ready")


def wait_meta_leader(target: Processes, ops: NatsOps, *, timeout: float) -> str:
    """Wait until the running nodes agree on a JetStream meta leader (needed before any
    stream can be created or changed)."""

    def agreed() -> str | None:
        seen = {meta_leader(ops, m) for m in reachable(target, ops)}
        return seen.pop() if len(seen) == 1 else None

    return poll_until(agreed, timeout=timeout, interval=0.1,
                      what="the NATS nodes to elect a JetStream meta leader")


def stream_leader(target: Target, ops: NatsOps | None = None) -> MemberRef:
    """The node leading the drill stream, from the stream info's cluster leader (the
    server name, which is the member name)."""
    ops = ops or nats_ops(target)
    info = client.stream_info(client_urls(target, ops))
    name = info.cluster.leader if info.cluster else None
    for m in ops.servers():
        if m.name == name:
            return m
    raise ActionFailed(f"stream {client.STREAM} has no leader among the NATS nodes ({name!r})")


def member_role(target: Target, member: MemberRef, r: Readiness | None) -> Role:
    if not target.is_running(member):
        return Role.DOWN
    if is_stopped(target, member):
        return Role.PAUSED
    if r is not None and r.stream_leader == member.name:
        return Role.LEADER
    if r is not None and member.name in r.replicas:
        return Role.REPLICA
    ops = nats_ops(target)
    if healthz(ops, member).startswith("no answer"):
        # SIGSTOP lands asynchronously: look again once the request has timed out.
        return Role.PAUSED if is_stopped(target, member) else Role.UNRESPONSIVE
    return Role.NODE


def member_roles(target: Target) -> dict[str, str]:
    """Live role of every NATS node by name: stream-leader, stream-replica, node (holds no
    replica), down, paused (SIGSTOPped) or unresponsive."""
    ops = nats_ops(target)
    try:
        r: Readiness | None = readiness(target, ops)
    except Exception:
        r = None
    return {m.name: str(member_role(target, m, r)) for m in ops.servers()}

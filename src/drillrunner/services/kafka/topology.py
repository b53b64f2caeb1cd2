"""Who leads the drill partition, who follows in sync, who is the active KRaft controller:
always read from the cluster (partition metadata) and from the Raft state of the nodes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

from drillrunner.core.errors import ActionFailed
from drillrunner.services.common import wait_verdict
from drillrunner.services.kafka import client
from drillrunner.services.kafka.client import PartitionState
from drillrunner.services.kafka.ops import KafkaOps
from drillrunner.services.paused import Processes as Procs
from drillrunner.services.paused import is_stopped
from drillrunner.targets.base import MemberRef

SERVICE = "kafka"
REPLICATION = 3


class Role(StrEnum):
    LEADER = "leader"  # of the drill partition
    FOLLOWER = "follower"  # a replica in the ISR
    OUT_OF_SYNC = "out-of-sync"  # a replica dropped from the ISR
    DOWN = "down"
    PAUSED = "paused"
    UNRESPONSIVE = "unresponsive"


CONTROLLER_SUFFIX = "+controller"  # appended to the role of the active controller






def is_live(target: Procs, member: MemberRef) -> bool:
    return target.is_running(member) and not is_stopped(target, member)


def live_bootstrap(target: Procs, ops: KafkaOps) -> str:
    """The client listeners of running, unfrozen brokers (all of them if none is)."""
    live = [b for b in ops.brokers() if is_live(target, b)]
    return ",".join(f"{b.host}:{b.port}" for b in live) or ops.bootstrap()


def partition_state(target: Procs, ops: KafkaOps,
                    timeout: float = client.ADMIN_TIMEOUT) -> PartitionState | None:
    md = client.metadata(live_bootstrap(target, ops), ops.topic, ops.partition, timeout)
    return md.partition


def active_controller(target: Procs, ops: KafkaOps) -> MemberRef | None:
    """The KRaft leader a majority of the live controllers follow in the newest epoch, if
    it is itself live (a frozen leader keeps its own stale view until others move on)."""
    brokers = ops.brokers()
    views = {b.name: ops.quorum_view(b.name) for b in brokers if is_live(target, b)}
    votes = Counter((v.leader_epoch, v.leader_id) for v in views.values()
                    if v is not None and v.leader_id >= 0)
    if not votes:
        return None
    (_epoch, leader_id), count = max(votes.items(), key=lambda kv: kv[0][0])
    if count < len(brokers) // 2 + 1:
        return None
    leader = next((b for b in brokers if ops.node_id(b.name) == leader_id), None)
    return leader if leader is not None and leader.name in views else None


def partition_leader(target: Procs, ops: KafkaOps) -> MemberRef:
    """The live leader of the drill partition, from the cluster's metadata."""
    state = partition_state(target, ops)
    if state is None or state.leader is None:
        raise ActionFailed(f"{ops.topic}-{ops.partition} has no leader in the metadata")
    for b in ops.brokers():
        if ops.node_id(b.name) == state.leader and is_live(target, b):
            return b
    raise ActionFailed(f"the leader of {ops.topic}-{ops.partition} (node {state.leader}) "
                       "is not a live member")


def partition_followers(target: Procs, ops: KafkaOps) -> list[MemberRef]:
    """Live replicas of the drill partition other than its leader."""
    state = partition_state(target, ops)
    if state is None:
        raise ActionFailed(f"{ops.topic} does not exist")
    return [b for b in ops.brokers()
            if ops.node_id(b.name) in state.replicas and ops.node_id(b.name) != state.leader
            and is_live(target, b)]


def member_role(target: Procs, ops: KafkaOps, member: MemberRef,
                state: PartitionState | None, controller: MemberRef | None) -> str:
    if not target.is_running(member):
        return str(Role.DOWN)
    if is_stopped(target, member):
        return str(Role.PAUSED)
    node = ops.node_id(member.name)
    if state is None:
        role = Role.UNRESPONSIVE
    elif state.leader == node:
        role = Role.LEADER
    elif node in state.isr:
        role = Role.FOLLOWER
    else:
        role = Role.OUT_OF_SYNC
    suffix = CONTROLLER_SUFFIX if controller is not None and controller.name == member.name \
        else ""
    return f"{role}{suffix}"


def member_roles_with(target: Procs, ops: KafkaOps) -> dict[str, str]:
    try:
        state = partition_state(target, ops)
    except Exception:
        state = None
    controller = active_controller(target, ops)
    return {b.name: member_role(target, ops, b, state, controller) for b in ops.brokers()}


@dataclass(frozen=True)
class Readiness:
    """Real readiness: every broker registered and unfenced, the controller quorum led, the
    drill partition led with all 3 replicas in sync. `problems` says what is missing."""

    leader: int | None = None
    isr: list[int] = field(default_factory=list)
    controller: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems


def readiness(target: Procs, ops: KafkaOps) -> Readiness:
    problems: list[str] = []
    brokers = ops.brokers()
    for b in brokers:
        if not target.is_running(b):
            problems.append(f"{b.name} is down")
        elif is_stopped(target, b):
            problems.append(f"{b.name} is paused")
    controller = active_controller(target, ops)
    if controller is None:
        problems.append("the KRaft controller quorum has no leader a majority follows")
    try:
        md = client.metadata(live_bootstrap(target, ops), ops.topic, ops.partition)
    except Exception as exc:
        problems.append(f"no metadata from the brokers ({type(exc).__name__}: {exc})")
        return Readiness(None, [], controller.name if controller else None, problems)
    if len(md.brokers) < len(brokers):
        problems.append(f"{len(md.brokers)} of {len(brokers)} brokers registered and unfenced")
    state = md.partition
    if state is None:
        problems.append(f"topic {ops.topic} does not exist")
        return Readiness(None, [], controller.name if controller else None, problems)
    if state.leader is None:
        problems.append(f"{ops.topic}-{ops.partition} has no leader")
    if len(state.isr) < REPLICATION:
        problems.append(f"{ops.topic}-{ops.partition} ISR is {state.isr}, not all "
                        f"{REPLICATION} replicas")
    return Readiness(state.leader, state.isr, controller.name if controller else None, problems)


def wait_ready(target: Procs, ops: KafkaOps, *, timeout: float) -> Readiness:
    return wait_verdict(lambda: readiness(target, ops), timeout=timeout, interval=0.2,
                        what="Kafka to be ready")

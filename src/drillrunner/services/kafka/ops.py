"""What the Kafka driver needs from a target beyond the generic Target protocol.

The local target's KafkaDeployment implements it with files on disk; a kind target can read
the same Raft state with `kubectl exec` on the pods.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from drillrunner.core.errors import ActionFailed
from drillrunner.targets.base import MemberRef, Target


class QuorumView(BaseModel):
    """One controller's persisted KRaft election state (its `quorum-state` file): the leader
    it follows (or is) in `leader_epoch`; leader_id -1 while an election is open."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    leader_id: int
    leader_epoch: int


@runtime_checkable
class KafkaOps(Protocol):
    topic: str  # the drill topic: one partition, replication factor 3
    partition: int

    @property
    def min_insync_replicas(self) -> int:
        """The drill topic's min.insync.replicas the stack is meant to run with."""

    def brokers(self) -> list[MemberRef]: ...

    def node_id(self, name: str) -> int: ...

    def bootstrap(self) -> str:
        """host:port,... of every broker's client listener."""

    def quorum_view(self, name: str) -> QuorumView | None:
        """The member's persisted KRaft election state (None before its first election)."""

    def ensure_topic(self) -> bool:
        """Create the drill topic if missing and bring its config in line with the
        settings; True if anything changed."""


def kafka_ops(target: Target) -> KafkaOps:
    ops = target.deployment("kafka")
    if not isinstance(ops, KafkaOps):
        raise ActionFailed(f"target {target.name} offers no Kafka operations")
    return ops

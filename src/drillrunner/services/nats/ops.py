"""What the NATS driver needs from a target beyond the generic Target protocol.

The local target's NatsDeployment implements it with processes and folders; a kind target
can implement it with pods, port-forwards and their volumes.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from drillrunner.core.errors import ActionFailed
from drillrunner.services.nats.client import StreamSpec
from drillrunner.targets.base import MemberRef, Target


@runtime_checkable
class NatsOps(Protocol):
    def servers(self) -> list[MemberRef]:
        """Every node of the cluster; `port` is its client port, `name` its server_name."""

    def monitor_port(self, name: str) -> int:
        """The node's HTTP monitoring port (/healthz, /jsz)."""

    def stream_spec(self) -> StreamSpec:
        """The drill stream as the stack settings want it (replicas)."""

    def has_data(self, name: str) -> bool:
        """Whether the node's JetStream store holds anything."""

    def wipe(self, name: str) -> None:
        """Delete a stopped node's JetStream store (a lost volume)."""


def nats_ops(target: Target) -> NatsOps:
    ops = target.deployment("nats")
    if not isinstance(ops, NatsOps):
        raise ActionFailed(f"target {target.name} offers no NATS operations")
    return ops

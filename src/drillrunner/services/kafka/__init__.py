"""Kafka service driver: a 3-node KRaft quorum (combined broker + controller nodes).

Registered names live in the submodules (the catalog scans them); confluent-kafka is imported
lazily inside functions so loading the catalog stays cheap.
"""

from __future__ import annotations

from drillrunner.services.kafka.topology import Role
from drillrunner.targets.base import Target


def member_roles(target: Target) -> dict[str, str]:
    """Live role of every Kafka node by name: leader / follower / out-of-sync (of the drill
    partition, from the cluster's metadata), down, paused or unresponsive; the active KRaft
    controller's role carries "+controller"."""
    from drillrunner.services.kafka.ops import kafka_ops
    from drillrunner.services.kafka.topology import member_roles_with

    return member_roles_with(target, kafka_ops(target))


__all__ = ["Role", "member_roles"]

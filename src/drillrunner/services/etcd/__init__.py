"""etcd service driver: member roles, probes, faults and a sequenced-write workload over a
3-member cluster. httpx is imported inside functions only."""

from __future__ import annotations

from drillrunner.services.etcd.topology import Role, member_roles

__all__ = ["Role", "member_roles"]

"""NATS JetStream service driver: probes, faults, a publishing workload and the stream
reconciliation check, over a 3-node cluster with a replicated file stream.

Registered names live in the submodules (the catalog scans them); nats-py is imported
lazily inside functions so loading the catalog stays cheap.
"""

from drillrunner.services.nats.topology import Role, member_roles

__all__ = ["Role", "member_roles"]

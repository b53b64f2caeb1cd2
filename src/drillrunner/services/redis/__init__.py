"""Redis service driver: probes, faults, workloads, backup and restore over Sentinel.

Registered names live in the submodules (the catalog scans them); redis-py is imported
lazily inside functions so loading the catalog stays cheap.
"""

from drillrunner.services.redis.topology import Role, member_roles

__all__ = ["Role", "member_roles"]

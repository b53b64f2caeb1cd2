"""The TimescaleDB (PostgreSQL) service driver: probes, faults, workload, backup and checks.

Roles are read from the servers (`pg_is_in_recovery()`), never assumed: after a failover
by Patroni tsdb-1 may be the primary. `drill stack status` shows Patroni's view beside it
(status_roles). psycopg is imported inside functions only.
"""

from drillrunner.services.timescaledb.roles import Role, member_roles, status_roles

__all__ = ["Role", "member_roles", "status_roles"]

"""The OMS service driver: probes, faults, the order workload and the checks of the
kill-switch, circuit-breaker and simulation-guard claims. httpx, psycopg and redis-py are
imported inside functions only; the app itself lives in orderservice."""

from drillrunner.services.oms.roles import Role, member_roles

__all__ = ["Role", "member_roles"]

"""Read-only observations of the PostgreSQL members."""

from __future__ import annotations

import math

from drillrunner.core.actions import probe
from drillrunner.core.units import Duration
from drillrunner.engine.context import RunContext
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.ops import pg_ops
from drillrunner.services.timescaledb.roles import Role, member_roles, replicas

# A standby that has not replied for this long is not streaming, whatever the primary's
# pg_stat_replication still says (a frozen walreceiver keeps its row until the timeout).
# Standbys reply every wal_receiver_status_interval (1 s in the local stack).
STALE_REPLY_SECONDS = 3.0


def _primary(roles: dict[str, str]) -> str | None:
    primaries = [n for n, r in roles.items() if r == Role.PRIMARY]
    return primaries[0] if len(primaries) == 1 else None


def _standbys(ctx: RunContext, primary: str) -> dict[str, sql.Standby]:
    import psycopg

    try:
        return {s.name: s for s in sql.standbys(pg_ops(ctx.target).dsn(primary))}
    except psycopg.Error:
        return {}


def _lag(s: sql.Standby) -> float:
    if s.state != "streaming":
        return math.inf
    if s.lag_bytes <= 0:
        return 0.0
    # Behind: replay_lag stops being updated when the standby stops replying, so the age of
    # its last reply bounds the lag from below.
    return max(s.replay_lag or 0.0, s.reply_age or 0.0)


@probe("timescaledb.ready")
def ready(ctx: RunContext) -> bool:
    """One primary accepts read-write connections and every standing member answers."""
    import psycopg

    roles = member_roles(ctx.target)
    if _primary(roles) is None or any(r in (Role.DOWN, Role.PAUSED) for r in roles.values()):
        return False
    try:
        read_only = sql.fetch_value(pg_ops(ctx.target).cluster_dsn(), "SHOW transaction_read_only")
    except psycopg.Error:
        return False
    return bool(read_only == "off")


@probe("timescaledb.replication_lag")
def replication_lag(ctx: RunContext) -> float:
    """Seconds the worst replica is behind the primary (inf if one does not stream)."""
    roles = member_roles(ctx.target)
    primary = _primary(roles)
    others = [n for n in roles if n != primary]
    if primary is None or not others:
        return math.inf
    rows = _standbys(ctx, primary)
    return max(_lag(rows[n]) if n in rows else math.inf for n in others)


@probe("timescaledb.replica_streaming")
def replica_streaming(ctx: RunContext) -> bool:
    """Every non-primary member is a replica streaming from the primary and replying."""
    roles = member_roles(ctx.target)
    primary = _primary(roles)
    others = [n for n in roles if n != primary]
    if primary is None or not others or len(replicas(roles)) != len(others):
        return False
    rows = _standbys(ctx, primary)
    return all(
        n in rows and rows[n].state == "streaming"
        and (rows[n].reply_age or 0.0) < STALE_REPLY_SECONDS
        for n in others
    )


@probe("timescaledb.writable")
def writable(ctx: RunContext, timeout: Duration = 2.0) -> bool:
    """A write commits on the primary within `timeout` (synchronous replication included)."""
    import psycopg

    try:
        with sql.connect(pg_ops(ctx.target).cluster_dsn(), timeout, for_writes=True) as conn:
            sql.execute_bounded(conn, sql.WRITE_PROBE, [], timeout)
    except (psycopg.Error, sql.Indeterminate, sql.Rejected):
        return False
    return True

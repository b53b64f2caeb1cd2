"""Read-only observations of the Redis tier."""

from __future__ import annotations

from drillrunner.core.actions import probe
from drillrunner.engine.context import RunContext
from drillrunner.services.redis import client
from drillrunner.services.redis.ops import redis_ops
from drillrunner.services.redis.topology import (
    readiness,
    sentinel_master,
    sentinels_of,
    servers_of,
)

# Returned by redis.replication_lag when no replica is online: larger than any real lag,
# finite so it stays valid JSON in the journal.
NO_REPLICA_LAG = 1e18


@probe("redis.ready")
def ready(ctx: RunContext) -> bool:
    """A primary answers, a replica's link to it is up, and every sentinel agrees on it
    and knows the replica and the other sentinels."""
    r = readiness(servers_of(ctx.target), sentinels_of(ctx.target), redis_ops(ctx.target))
    if not r.ready:
        ctx.record("redis.not_ready", problems=r.problems)
    return r.ready


@probe("redis.replication_lag")
def replication_lag(ctx: RunContext) -> float:
    """Bytes of the replication stream the replica has not acknowledged (master offset -
    replica offset). Bytes, not seconds: Redis only reports whole seconds since the
    replica's last ACK, which is ~1 s even when nothing is behind. 1e18 if no replica."""
    r = readiness(servers_of(ctx.target), [], redis_ops(ctx.target))
    return float(r.lag_bytes) if r.lag_bytes is not None else NO_REPLICA_LAG


@probe("redis.sentinels_agree")
def sentinels_agree(ctx: RunContext) -> bool:
    """Every sentinel answers and names the same master, and that server is a primary."""
    ops = redis_ops(ctx.target)
    sentinels = sentinels_of(ctx.target)
    addrs = set()
    for s in sentinels:
        try:
            addrs.add(client.sentinel_master_addr(s, ops.master_name))
        except Exception:
            return False
    if len(addrs) != 1 or None in addrs:
        return False
    master = sentinel_master(servers_of(ctx.target), sentinels, ops)
    try:
        return master is not None and client.info(master, "replication")["role"] == "master"
    except Exception:
        return False


@probe("redis.persistence")
def persistence(ctx: RunContext) -> str:
    """What the primary persists, as it reports it: "aof", "rdb" (save points only) or
    "none" (a crash loses everything)."""
    master = sentinel_master(servers_of(ctx.target), sentinels_of(ctx.target),
                             redis_ops(ctx.target))
    if master is None:
        raise RuntimeError("no sentinel names a Redis primary")
    if int(client.info(master, "persistence")["aof_enabled"]) == 1:
        return "aof"
    conn = client.connect_member(master)
    try:
        save = str(conn.config_get("save").get("save", ""))
    finally:
        conn.close()
    return "rdb" if save.strip() else "none"

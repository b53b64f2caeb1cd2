"""Snapshot and restore of the Redis tier.

Measured on Redis 7.0.15: a dump.rdb put into an empty data folder of a server started
with `appendonly yes` is IGNORED (the server starts empty, creates an empty AOF and, on
shutdown, overwrites that dump.rdb with the empty dataset). So a restore loads the RDB
with AOF off, then turns AOF on with CONFIG SET, which writes the AOF from memory
(the documented way to switch), before the replica and the sentinels join.
The RDB is used rather than the copied AOF directory because BGSAVE is a point-in-time
image (the fork at the moment of the command), so "what the snapshot covers" is exact.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drillrunner.core.actions import action, check
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration, parse_duration
from drillrunner.core.verdicts import CheckResult, FaultResult, Verdict
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import RunContext
from drillrunner.services.redis import client
from drillrunner.services.redis.lifecycle import current_primary
from drillrunner.services.redis.ops import RedisOps, redis_ops
from drillrunner.services.redis.topology import wait_aof_written, wait_ready
from drillrunner.targets.base import MemberRef, Signal, Target

STASH_SNAPSHOT = "redis.snapshot"
STASH_RESTORE = "redis.restore"
POLL = 0.05  # polling interval of every wait here, hence the restore time's error bar


@action("redis.snapshot")
def snapshot(ctx: RunContext, timeout: Duration = 60.0) -> FaultResult:
    """BGSAVE on the primary, wait until it is written (INFO persistence), copy dump.rdb
    and the AOF directory into the target's artifacts folder. Every write acknowledged
    before the BGSAVE was sent is in it; that moment is stashed for the checks."""
    target = ctx.target
    ops = redis_ops(target)
    primary = current_primary(target, ops)
    before = client.info(primary, "persistence")
    poll_until(lambda: _no_fork_running(primary), timeout=timeout, interval=POLL,
               what=f"{primary.name} to finish its running background save")
    covered_at = time.monotonic()
    conn = client.connect_member(primary, timeout=5.0)
    try:
        conn.bgsave()
        keys = int(conn.dbsize())
    finally:
        conn.close()
    saves = int(before["rdb_saves"])

    def saved() -> bool:
        p = client.info(primary, "persistence")
        if int(p["rdb_bgsave_in_progress"]) or int(p["rdb_saves"]) <= saves:
            return False
        if p["rdb_last_bgsave_status"] != "ok":
            raise ActionFailed(f"BGSAVE on {primary.name} failed (see its log)")
        return True

    poll_until(saved, timeout=timeout, interval=POLL, what=f"BGSAVE on {primary.name}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = target.artifacts_dir() / "redis" / f"{ctx.scenario}-{stamp}"
    copied = ops.copy_out(primary.name, dest)
    ctx.stash[STASH_SNAPSHOT] = {"path": str(dest), "covered_at": covered_at, "keys": keys,
                                 "primary": primary.name}
    return FaultResult(summary=f"snapshot of {primary.name} ({keys} keys) in {dest}",
                       members=[primary.name],
                       detail={"path": str(dest), "files": copied, "keys": keys})


def _no_fork_running(primary: MemberRef) -> bool:
    p = client.info(primary, "persistence")
    return not int(p["rdb_bgsave_in_progress"]) and not int(p["aof_rewrite_in_progress"])


@action("redis.restore_snapshot")
def restore_snapshot(ctx: RunContext, path: str | None = None,
                     timeout: Duration = 60.0) -> FaultResult:
    """Replace the tier with fresh members built from a snapshot (default: the one this
    scenario took): stop every member, empty its data, load the RDB into the primary,
    then start the replica and fresh sentinels and wait until the tier is ready."""
    source = path or (ctx.stash.get(STASH_SNAPSHOT) or {}).get("path")
    if not source or not Path(source, "dump.rdb").exists():
        raise ActionFailed("no Redis snapshot to restore: run redis.snapshot first or give path")
    ops = redis_ops(ctx.target)
    seconds, master = restore_into_fresh_tier(ctx.target, ops, Path(source), timeout)
    ctx.stash[STASH_RESTORE] = {"restore_seconds": seconds, "error_seconds": POLL,
                                "path": source}
    return FaultResult(summary=f"restored {source} in {seconds:.2f}s; primary {master}",
                       members=[m.name for m in [*ops.servers(), *ops.sentinels()]],
                       detail={"path": source, "primary": master},
                       measurements={"restore_seconds": round(seconds, 4)})


def restore_into_fresh_tier(target: Target, ops: RedisOps, source: Path,
                            timeout: float) -> tuple[float, str]:
    """Returns (seconds until the tier was ready again, primary name)."""
    t0 = time.monotonic()
    servers, sentinels = ops.servers(), ops.sentinels()
    for m in [*sentinels, *servers]:
        ops.hold(m.name)  # kept down once killed (kind recreates a deleted pod at once)
        target.kill(m, Signal.KILL)  # no-op for a member already down
        ops.wipe(m.name)
    primary, replicas = servers[0], servers[1:]
    ops.copy_in(primary.name, source)
    ops.prepare_server(primary.name, None, appendonly=False)
    target.start(primary)
    poll_until(lambda: _loaded(primary), timeout=timeout, interval=POLL,
               what=f"{primary.name} to load the snapshot", retry_on=(Exception,))
    if ops.appendonly:
        conn = client.connect_member(primary, timeout=5.0)
        try:
            conn.config_set("appendonly", "yes")
        finally:
            conn.close()
        wait_aof_written(primary, timeout)
        ops.prepare_server(primary.name, None)  # its next start loads that AOF
    for replica in replicas:
        ops.prepare_server(replica.name, primary)
        target.start(replica)
    for sentinel in sentinels:
        ops.prepare_sentinel(sentinel.name, primary, fresh=True)
        target.start(sentinel)
    wait_ready(servers, sentinels, timeout=timeout, ops=ops)
    return time.monotonic() - t0, primary.name


def _loaded(primary: MemberRef) -> bool:
    return int(client.info(primary, "persistence")["loading"]) == 0


@check("redis.snapshot_restored")
def snapshot_restored(ctx: RunContext, workload: str = "redis.sequenced_writes") -> CheckResult:
    """Every write acknowledged before the snapshot was taken is back after the restore,
    and the restore met the scenario's RTO (slo.rto) if one is set."""
    snap: dict[str, Any] | None = ctx.stash.get(STASH_SNAPSHOT)
    restored: dict[str, Any] | None = ctx.stash.get(STASH_RESTORE)
    client_ = ctx.workloads.get(workload)
    if snap is None or restored is None or client_ is None:
        return CheckResult(verdict=Verdict.UNKNOWN,
                           summary="no snapshot, restore or workload to compare")
    covered = [o.seq for o in ctx.history.ops(workload)
               if o.status == "ok" and o.completed < snap["covered_at"]]
    present = client_.read_back(covered)
    lost = sorted(set(covered) - present)
    rto = float(restored["restore_seconds"])
    limit = parse_duration(ctx.slo["rto"]) if ctx.slo.get("rto") is not None else None
    measurements: dict[str, float | int | str | None] = {
        "acknowledged_writes": len(covered),
        "lost_acknowledged_writes": len(lost),
        "restore_seconds": round(rto, 4),
        "restore_error_seconds": restored["error_seconds"],
    }
    if not covered:
        return CheckResult(verdict=Verdict.UNKNOWN, measurements=measurements,
                           summary="no write was acknowledged before the snapshot")
    ok = not lost and (limit is None or rto <= limit)
    rto_text = f"restore took {rto:.2f}s" + (f" (SLO {limit:g}s)" if limit is not None else "")
    return CheckResult(
        verdict=Verdict.PASS if ok else Verdict.FAIL,
        summary=f"{len(lost)} of {len(covered)} writes acknowledged before the snapshot "
                f"missing after the restore; {rto_text}",
        evidence={"lost_sequences_sample": lost[:20], "snapshot": snap["path"]},
        measurements=measurements,
    )

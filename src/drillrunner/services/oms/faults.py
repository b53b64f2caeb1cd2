"""Faults on the OMS and on its dependencies as the OMS sees them. Each journals its undo
before it acts; the observations (when the breaker opened, when readiness dropped) are
stashed for the checks, on the monotonic clock the OMS shares with drill."""

from __future__ import annotations

from typing import Any, Literal

from drillrunner.core.actions import action, fault
from drillrunner.core.errors import StackError
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import WaitTimeout, monotonic, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.services.common import resume_if_paused
from drillrunner.services.oms.http import get
from drillrunner.services.oms.ops import SERVICE, oms_ops
from drillrunner.services.paused import is_stopped
from drillrunner.services.redis.ops import redis_ops
from drillrunner.services.redis.topology import wait_ready
from drillrunner.services.timescaledb.ops import pg_ops
from drillrunner.services.timescaledb.roles import the_primary
from drillrunner.targets.base import Signal

# ctx.stash keys read by the checks.
PG_PAUSE = "oms.postgres_paused"
PG_RESUME = "oms.postgres_resumed"
REDIS_DOWN = "oms.redis_unreachable"
REDIS_BACK = "oms.redis_reachable"
STARTED = "oms.started"
GUARD = "oms.guarded_start"
OBSERVE_INTERVAL = 0.05


def _observe(condition: Any, timeout: float, what: str) -> float | None:
    """Seconds until `condition` held (polled), or None if it did not within `timeout`."""
    t0 = monotonic()
    try:
        poll_until(condition, timeout=timeout, interval=OBSERVE_INTERVAL, what=what)
    except WaitTimeout:
        return None
    return monotonic() - t0


@fault("oms.kill", undo="oms.start")
def kill(ctx: RunContext, member: str = "oms-0", signal: Signal = Signal.KILL) -> FaultResult:
    """Kill the OMS process (SIGKILL: no shutdown hook runs). Undo: start it again."""
    ref = ctx.target.member(SERVICE, member)
    ctx.will_undo("oms.start", member=member)
    ctx.target.kill(ref, signal)
    return FaultResult(summary=f"killed {member} with SIG{signal}", members=[member],
                       measurements={"killed_at": monotonic()})


@action("oms.start")
def start(ctx: RunContext, member: str = "oms-0", timeout: Duration = 30.0,
          ready_timeout: Duration = 15.0) -> FaultResult:
    """Start the member with the stack's settings if it is down, or runs with other
    settings (oms.restart_with); measure the seconds until it serves /livez and /readyz.
    Idempotent."""
    ops = oms_ops(ctx.target)
    if ops.running_overrides(member):
        ops.stop_member(member)
    t0 = monotonic()
    seconds = ops.start_member(member, timeout=timeout)
    url = ops.url(member)
    ready_after = _observe(lambda: get(f"{url}/readyz").status == 200, ready_timeout,
                           f"{member} to be ready")
    ready_s = None if ready_after is None else seconds + ready_after
    ctx.stash[STARTED] = {"started_at": t0, "start_seconds": seconds, "ready_seconds": ready_s,
                          "ready": ready_after is not None}
    what = f"started {member} in {seconds:.2f}s" if seconds else f"{member} already running"
    return FaultResult(summary=f"{what}; ready: {ready_after is not None}", members=[member],
                       measurements={"oms_start_seconds": round(seconds, 3),
                                     "oms_ready_seconds": None if ready_s is None
                                     else round(ready_s, 3),
                                     # the start until /readyz: a restart scenario's RTO
                                     "rto_seconds": None if ready_s is None
                                     else round(ready_s, 3),
                                     "rto_error_seconds": OBSERVE_INTERVAL})


@fault("oms.restart_with", undo="oms.start")
def restart_with(ctx: RunContext, member: str = "oms-0",
                 environment: Literal["production", "staging", "development"] = "production",
                 simulation: bool = True, timeout: Duration = 10.0) -> FaultResult:
    """Restart the member with `environment` and `simulation` changed (every other setting
    as the stack has it, the simulation guard included) and record whether it started.
    Undo: restart it with the stack's settings."""
    ops = oms_ops(ctx.target)
    ref = ctx.target.member(SERVICE, member)
    ctx.will_undo("oms.start", member=member)
    ops.stop_member(member)
    overrides = {"environment": environment, "simulation": simulation}
    t0 = monotonic()
    outcome: dict[str, Any] = {"overrides": overrides, "started": False}
    try:
        ops.start_member(member, overrides, timeout=timeout)
        outcome["started"] = True
        outcome["info"] = get(f"{ops.url(member)}/admin/info").body
    except StackError as exc:
        outcome["error"] = str(exc).splitlines()[0]
    outcome["seconds"] = round(monotonic() - t0, 3)
    outcome["running"] = ctx.target.is_running(ref)
    outcome["log_tail"] = ctx.target.log_tail(ref, 6)
    ctx.stash[GUARD] = outcome
    verb = "STARTED" if outcome["started"] else "refused to start"
    return FaultResult(summary=f"{member} with environment={environment} "
                       f"simulation={simulation}: {verb}", members=[member], detail=outcome)


def _primary_name(ctx: RunContext) -> str:
    return the_primary(ctx.target).name


@fault("oms.pause_postgres_primary", undo="oms.resume_postgres")
def pause_postgres_primary(ctx: RunContext, member: str = "oms-0",
                           observe: Duration = 8.0) -> FaultResult:
    """Freeze every process of the PostgreSQL primary (it keeps its sockets and answers
    nothing), then watch the OMS for up to `observe` seconds until its breaker is open and
    /readyz fails. Undo: resume it."""
    primary = _primary_name(ctx)
    ctx.will_undo("oms.resume_postgres", member=primary)
    url = oms_ops(ctx.target).url(member)
    paused_at = monotonic()
    pg_ops(ctx.target).pause(primary)
    seen: dict[str, float] = {}

    def observed() -> bool:
        if "open" not in seen and get(f"{url}/admin/breaker").body.get("state") == "open":
            seen["open"] = monotonic() - paused_at
        if "not_ready" not in seen and get(f"{url}/readyz").status != 200:
            seen["not_ready"] = monotonic() - paused_at
        return len(seen) == 2

    _observe(observed, observe, "the breaker to open and readiness to drop")
    opened = _opened_after(get(f"{url}/admin/breaker").body, paused_at)
    ctx.stash[PG_PAUSE] = {"member": primary, "paused_at": paused_at, "opened_after": opened,
                           "open_seen_after": seen.get("open"),
                           "not_ready_after": seen.get("not_ready")}
    return FaultResult(
        summary=f"paused PostgreSQL primary {primary}; breaker open after "
                f"{_fmt(opened)}, /readyz failing after {_fmt(seen.get('not_ready'))}",
        members=[primary], detail=ctx.stash[PG_PAUSE],
        measurements={"breaker_open_seconds": opened,
                      "not_ready_seconds": seen.get("not_ready")})


def _opened_after(snapshot: dict[str, Any], since: float) -> float | None:
    """Seconds from `since` to the breaker's first move to open after it (server clock)."""
    for t in snapshot.get("transitions", []):
        if t["to"] == "open" and float(t["at"]) >= since:
            return round(float(t["at"]) - since, 4)
    return None


def _closed_after(snapshot: dict[str, Any], since: float) -> float | None:
    for t in snapshot.get("transitions", []):
        if t["to"] == "closed" and float(t["at"]) >= since:
            return round(float(t["at"]) - since, 4)
    return None


def _fmt(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.2f}s"


@action("oms.resume_postgres")
def resume_postgres(ctx: RunContext, member: str | None = None, oms_member: str = "oms-0",
                    timeout: Duration = 30.0) -> FaultResult:
    """Resume a frozen PostgreSQL member (every standing member if none is named), then
    wait until the OMS breaker has closed and /readyz answers 200. Idempotent."""
    ops = pg_ops(ctx.target)
    names = [member] if member else [m.name for m in ctx.target.members("timescaledb")
                                      if m.kind == "server"]  # never a restore copy
    resumed_at = monotonic()
    for name in names:
        ops.resume(name)
    url = oms_ops(ctx.target).url(oms_member)

    def healthy() -> bool:
        state = get(f"{url}/admin/breaker").body.get("state")
        return state in ("closed", "disabled") and get(f"{url}/readyz").status == 200

    ready_after = _observe(healthy, timeout, "the OMS to be ready again") \
        if ctx.target.is_running(ctx.target.member(SERVICE, oms_member)) else None
    closed = _closed_after(get(f"{url}/admin/breaker").body, resumed_at)
    ctx.stash[PG_RESUME] = {"resumed_at": resumed_at, "closed_after": closed,
                            "ready_after": ready_after}
    return FaultResult(summary=f"resumed {', '.join(names)}; breaker closed after "
                       f"{_fmt(closed)}, OMS ready after {_fmt(ready_after)}",
                       members=names, detail=ctx.stash[PG_RESUME],
                       measurements={"breaker_close_seconds": closed,
                                     "ready_again_seconds": ready_after})


@fault("oms.redis_unreachable", undo="oms.redis_reachable", disrupts="all")
def redis_unreachable(ctx: RunContext, mode: Literal["pause", "kill"] = "pause",
                      member: str = "oms-0", observe: Duration = 5.0) -> FaultResult:
    """Make Redis unreachable as the OMS sees it: it asks the sentinels for the master, so
    a dead primary alone is a failover, not an outage. Every sentinel, the primary and the
    replica are frozen (`pause`: connections hang until the client's timeout, as in a
    partition) or killed (`kill`: refused at once). Then watch until the OMS reports the
    kill-switch state unreadable. Undo: resume or restart them."""
    r = redis_ops(ctx.target)
    members = [*r.sentinels(), *r.servers()]  # sentinels first: no failover meanwhile
    ctx.will_undo("oms.redis_reachable", mode=mode)
    invoked = monotonic()
    for m in members:
        if mode == "pause":
            ctx.target.pause(m)
        else:
            ctx.target.kill(m, Signal.KILL)
    if mode == "pause":
        poll_until(lambda: all(is_stopped(ctx.target, m) for m in members), timeout=5.0,
                   interval=0.01, what="every Redis member to stop")
    unreachable_at = monotonic()
    url = oms_ops(ctx.target).url(member)
    unreadable = _observe(
        lambda: get(f"{url}/admin/kill-switch").body.get("source") == "unreadable",
        observe, "the OMS to find the kill-switch unreadable")
    ctx.stash[REDIS_DOWN] = {"invoked_at": invoked, "unreachable_at": unreachable_at,
                             "mode": mode, "unreadable_seen_after": unreadable}
    return FaultResult(summary=f"{'froze' if mode == 'pause' else 'killed'} all "
                       f"{len(members)} Redis members; the OMS found the kill-switch unreadable "
                       f"after {_fmt(unreadable)}", members=[m.name for m in members],
                       detail=ctx.stash[REDIS_DOWN])


@action("oms.redis_reachable")
def redis_reachable(ctx: RunContext, mode: Literal["pause", "kill"] = "pause",
                    member: str = "oms-0", timeout: Duration = 60.0) -> FaultResult:
    """Resume frozen Redis members (servers first, so the sentinels wake to a live
    master) and start killed ones, wait until the tier is ready and the OMS reads the
    kill-switch again. Idempotent."""
    from drillrunner.services.redis.lifecycle import start_all

    r = redis_ops(ctx.target)
    back_at = monotonic()
    for m in [*r.servers(), *r.sentinels()]:
        resume_if_paused(ctx, m)
    started, _ = start_all(ctx.target, r, timeout)
    wait_ready(r.servers(), r.sentinels(), timeout=timeout, ops=r)
    url = oms_ops(ctx.target).url(member)
    readable = _observe(
        lambda: get(f"{url}/admin/kill-switch").body.get("source") in ("redis", "default"),
        timeout, "the OMS to read the kill-switch again")
    ctx.stash[REDIS_BACK] = {"back_at": back_at, "readable_after": readable, "mode": mode}
    return FaultResult(summary=f"Redis reachable again (started {', '.join(started) or 'none'})"
                       f"; the OMS read the kill-switch after {_fmt(readable)}",
                       members=started, detail=ctx.stash[REDIS_BACK])

"""The kill-switch as an operator changes it (the OMS admin API) and as Redis stores it."""

from __future__ import annotations

from typing import Any

from drillrunner.core.actions import action, fault
from drillrunner.core.errors import ActionFailed
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext
from drillrunner.services.oms.http import request
from drillrunner.services.oms.ops import oms_ops
from drillrunner.services.redis import client
from drillrunner.services.redis.ops import redis_ops
from drillrunner.targets.base import Target

TIMEOUT = 2.0


def _redis_master(target: Target) -> Any:
    from redis.exceptions import RedisError

    ops = redis_ops(target)
    sentinel = client.make_sentinel([(s.host, s.port) for s in ops.sentinels()], TIMEOUT)
    try:
        host, port = sentinel.discover_master(ops.master_name)
    except RedisError as exc:
        raise ActionFailed(f"no Redis master to reach: {exc}") from None
    finally:
        for conn in sentinel.sentinels:
            conn.close()
    mapped = ops.member_for(str(host), int(port))  # kind: the in-cluster name -> forward
    if mapped is not None:
        host, port = mapped.host, mapped.port
    return client.connect(str(host), int(port), TIMEOUT)


def stored_state(target: Target) -> str | None:
    """The raw value Redis holds for the kill-switch (None: no state, the default applies)."""
    conn = _redis_master(target)
    try:
        value = conn.get(oms_ops(target).kill_switch_key())
    finally:
        conn.close()
    return None if value is None else str(value)


def _set_via_api(ctx: RunContext, state: str, member: str) -> FaultResult:
    previous = stored_state(ctx.target)
    ctx.will_undo("oms.restore_kill_switch", previous=previous)
    reply = request("PUT", f"{oms_ops(ctx.target).url(member)}/admin/kill-switch",
                    json={"state": state}, timeout=TIMEOUT)
    if reply.status != 200:
        raise ActionFailed(f"PUT /admin/kill-switch {state}: {reply.status or reply.error} "
                           f"{reply.body}")
    return FaultResult(summary=f"kill-switch {state} through the admin API (Redis held "
                       f"{previous or 'no state'})", members=[member],
                       detail={"previous": previous, "state": state})


@fault("oms.disengage_kill_switch", undo="oms.restore_kill_switch", disrupts=0)
def disengage_kill_switch(ctx: RunContext, member: str = "oms-0") -> FaultResult:
    """Let orders through, as an operator going live would (PUT /admin/kill-switch).
    Undo: put back exactly what Redis held before (or no state)."""
    return _set_via_api(ctx, "disengaged", member)


@fault("oms.engage_kill_switch", undo="oms.restore_kill_switch", disrupts=0)
def engage_kill_switch(ctx: RunContext, member: str = "oms-0") -> FaultResult:
    """Block orders through the admin API. Undo: put back what Redis held before."""
    return _set_via_api(ctx, "engaged", member)


@fault("oms.forget_kill_switch", undo="oms.restore_kill_switch", disrupts=0)
def forget_kill_switch(ctx: RunContext) -> FaultResult:
    """Delete the kill-switch state from Redis, as a Redis that lost it would (flushed,
    restored from an older snapshot, a fresh volume): the OMS's default must apply.
    Undo: put the value back."""
    previous = stored_state(ctx.target)
    ctx.will_undo("oms.restore_kill_switch", previous=previous)
    conn = _redis_master(ctx.target)
    try:
        conn.delete(oms_ops(ctx.target).kill_switch_key())
    finally:
        conn.close()
    return FaultResult(summary=f"deleted the kill-switch state from Redis (it held "
                       f"{previous or 'nothing'})", detail={"previous": previous})


@action("oms.restore_kill_switch")
def restore_kill_switch(ctx: RunContext, previous: str | None = None) -> FaultResult:
    """Write `previous` into Redis as the kill-switch state, or delete the key when it is
    None. Straight into Redis, so it works while the OMS is down. Idempotent."""
    key = oms_ops(ctx.target).kill_switch_key()
    conn = _redis_master(ctx.target)
    try:
        if previous is None:
            conn.delete(key)
        else:
            conn.set(key, previous)
    finally:
        conn.close()
    return FaultResult(summary=f"kill-switch state in Redis: {previous or 'none (default)'}",
                       detail={"state": previous})

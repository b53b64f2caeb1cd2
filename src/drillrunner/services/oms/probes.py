"""Read-only observations of the OMS through its HTTP API."""

from __future__ import annotations

from drillrunner.core.actions import probe
from drillrunner.core.units import Duration
from drillrunner.engine.context import RunContext
from drillrunner.engine.recovery import lasting_success
from drillrunner.services.oms.http import get
from drillrunner.services.oms.ops import oms_ops
from drillrunner.services.oms.workload import WORKLOAD

MIN_LASTING_OPS = 3


def _url(ctx: RunContext, member: str) -> str:
    return oms_ops(ctx.target).url(member)


@probe("oms.live")
def live(ctx: RunContext, member: str = "oms-0") -> bool:
    """GET /livez answers 200: the process serves HTTP."""
    return get(f"{_url(ctx, member)}/livez").status == 200


@probe("oms.ready")
def ready(ctx: RunContext, member: str = "oms-0") -> bool:
    """GET /readyz answers 200: PostgreSQL and Redis answer and the breaker is not open
    (unless the OMS does not check its dependencies: the broken variant)."""
    return get(f"{_url(ctx, member)}/readyz").status == 200


@probe("oms.kill_switch_state")
def kill_switch_state(ctx: RunContext, member: str = "oms-0") -> str:
    """"engaged" (orders blocked), "disengaged", or "unknown" (Redis unreadable or the OMS
    not answering), as the OMS reads it."""
    reply = get(f"{_url(ctx, member)}/admin/kill-switch")
    state = reply.body.get("state") if reply.status == 200 else None
    return str(state) if state in ("engaged", "disengaged") else "unknown"


@probe("oms.breaker_state")
def breaker_state(ctx: RunContext, member: str = "oms-0") -> str:
    """The PostgreSQL circuit breaker: closed, open, half-open, disabled, or unknown."""
    reply = get(f"{_url(ctx, member)}/admin/breaker")
    return str(reply.body.get("state", "unknown")) if reply.status == 200 else "unknown"


@probe("oms.orders_flowing")
def orders_flowing(ctx: RunContext, settle: Duration = 1.0) -> bool:
    """Orders placed by oms.start_orders have been accepted without a failure for `settle`
    seconds since the last fault returned (a recovery probe: that workload is not the
    engine's, so the engine cannot wait for it itself)."""
    faults = ctx.history.faults()
    since = faults[-1].returned if faults else 0.0
    return lasting_success(ctx.history.ops(WORKLOAD), since, MIN_LASTING_OPS, settle)

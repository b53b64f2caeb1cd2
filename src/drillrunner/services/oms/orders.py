"""Orders placed by steps rather than by the engine's workload.

The engine starts `workload:` before any fault and needs a few acknowledged writes first,
but orders are only accepted once the kill-switch is disengaged, which is itself a step
with an undo (the kill-switch is engaged by default). So these scenarios disengage it,
then start the order flow with `oms.start_orders`, which runs the engine's own scheduler
(WorkloadThread) into the same history: the generic checks read it as any workload.
"""

from __future__ import annotations

import time

from drillrunner.core.actions import action, fault
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration, Rate
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import Op, OpStatus, OpUnknown
from drillrunner.evidence.events import Event
from drillrunner.services.oms.workload import WORKLOAD, OrdersClient, orders

WARMUP_OPS = 3


def _client(ctx: RunContext, timeout: float) -> OrdersClient:
    existing = ctx.workloads.get(WORKLOAD)
    if isinstance(existing, OrdersClient):
        return existing
    client = orders(ctx, timeout=timeout)
    ctx.workloads[WORKLOAD] = client
    return client


def _ok(ctx: RunContext) -> int:
    return sum(1 for o in ctx.history.ops(WORKLOAD) if o.status is OpStatus.OK)


@fault("oms.start_orders", undo="oms.stop_orders", disrupts=0)
def start_orders(ctx: RunContext, rate: Rate = 20.0, timeout: Duration = 1.0,
                 warmup: Duration = 10.0) -> FaultResult:
    """Place sequence-numbered orders at `rate` in the background (recorded in the history
    as workload oms.orders, stopped by the engine before the checks) and wait for the first
    acknowledged ones. Undo: stop."""
    ctx.will_undo("oms.stop_orders")
    ctx.start_workload(WORKLOAD, _client(ctx, timeout), rate)
    try:
        poll_until(lambda: _ok(ctx) >= WARMUP_OPS, timeout=warmup, interval=0.02,
                   what="the first accepted orders")
    except WaitTimeout:
        last = ctx.history.ops(WORKLOAD)[-1:]
        raise ActionFailed(f"orders are not accepted: {last[0].error if last else 'none sent'}"
                           ) from None
    return FaultResult(summary=f"placing orders at {rate:g}/s", detail={"rate": rate})


@action("oms.stop_orders")
def stop_orders(ctx: RunContext) -> FaultResult:
    """Stop the background orders of oms.start_orders. Idempotent."""
    running = [t for t in ctx.threads if t.name == WORKLOAD and t.running]
    if not running:
        return FaultResult(summary="no background orders to stop")
    for thread in running:
        thread.stop()
    return FaultResult(summary=f"stopped the orders after {len(ctx.history.ops(WORKLOAD))}")


@action("oms.send_orders")
def send_orders(ctx: RunContext, count: int = 20, rate: Rate = 20.0,
                timeout: Duration = 1.0) -> FaultResult:
    """Place `count` orders at `rate`, now, recorded in the history as oms.orders (to see
    whether the OMS accepts orders at a given moment, e.g. right after a restart)."""
    client = _client(ctx, timeout)
    base = max((o.seq for o in ctx.history.ops(WORKLOAD)), default=0)
    counts = {s: 0 for s in OpStatus}
    next_at = time.monotonic()
    for seq in range(base + 1, base + count + 1):
        invoked = time.monotonic()
        status, error = OpStatus.OK, None
        try:
            client.write(seq)
        except OpUnknown as exc:
            status, error = OpStatus.UNKNOWN, str(exc)[:200]
        except Exception as exc:
            status, error = OpStatus.FAIL, f"{type(exc).__name__}: {exc}"[:200]
        op = Op(WORKLOAD, seq, invoked, time.monotonic(), status, error)
        ctx.history.add_op(op)
        ctx.record(Event.OP, workload=WORKLOAD, op_seq=seq, invoked=op.invoked,
                   completed=op.completed, status=status.value, error=error)
        counts[status] += 1
        next_at += 1.0 / rate
        ctx.stop.wait(max(0.0, next_at - time.monotonic()))
    return FaultResult(summary=f"{count} orders: " + ", ".join(f"{v} {k.value}"
                                                               for k, v in counts.items()),
                       detail={k.value: v for k, v in counts.items()})

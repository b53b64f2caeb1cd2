"""The OMS stand-in against real PostgreSQL (primary + replica) and Redis (primary,
replica, 3 sentinels) on 127.0.0.1: every claim's check on the sound stack. Each broken
variant (a safety setting switched off) is caught by the scenarios run in
test_detection_matrix.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from drillrunner.core.verdicts import CheckResult, Verdict
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpStatus
from drillrunner.services.oms import checks, faults, killswitch, member_roles, orders, probes
from drillrunner.services.oms.workload import WORKLOAD
from drillrunner.stack.local import LocalTarget
from tests.driving import assert_outage_observed, inject, make_ctx
from tests.integration.conftest import ServiceStack, assert_down_is_clean, assert_up_is_quick

pytestmark = pytest.mark.integration

STACK = ServiceStack(("etcd", "timescaledb", "redis", "oms"), port_base=24000)
state, target = STACK.fixtures()
make_target = STACK.target


def finish(ctx: RunContext) -> None:
    orders.stop_orders(ctx)
    for client in ctx.workloads.values():
        client.close()


def show(result: CheckResult) -> None:
    print(f"\n{result.verdict}: {result.summary}\n  {result.measurements}")


@contextmanager
def taking_orders(target: LocalTarget, scenario: str,
                  heal: Callable[[RunContext], object]) -> Iterator[RunContext]:
    """Orders at 20/s with the kill-switch disengaged; at the end, whatever happened, the
    orders stopped, `heal` run and the kill-switch restored."""
    ctx = make_ctx(target, scenario)
    try:
        inject(ctx, "oms.disengage_kill_switch", killswitch.disengage_kill_switch)
        inject(ctx, "oms.start_orders", orders.start_orders, rate=20.0, timeout=2.0)
        yield ctx
    finally:
        finish(ctx)
        heal(ctx)
        killswitch.restore_kill_switch(ctx, previous=None)


def wait_orders(ctx: RunContext, more: int, what: str) -> None:
    n = len(ctx.history.ops(WORKLOAD))
    poll_until(lambda: len(ctx.history.ops(WORKLOAD)) >= n + more, timeout=20, what=what)


def wait_orders_accepted(ctx: RunContext) -> None:
    """Orders are accepted again, after some that the fault made fail or refused."""
    poll_until(lambda: probes.orders_flowing(ctx, settle=0.5), timeout=30,
               what="orders accepted again")
    assert_outage_observed(ctx.history, WORKLOAD)


def test_up_is_idempotent_and_orders_are_blocked_by_default(target: LocalTarget) -> None:
    assert_up_is_quick(target, "oms", 2.0)  # running with the same settings: nothing to do
    assert member_roles(target) == {"oms-0": "ready"}
    ctx = make_ctx(target, "probe")
    assert probes.live(ctx) and probes.ready(ctx)
    assert probes.kill_switch_state(ctx) == "engaged"  # fresh Redis: the file's default
    assert probes.breaker_state(ctx) == "closed"
    orders.send_orders(ctx, count=3)
    ops = ctx.history.ops(WORKLOAD)
    assert [o.status for o in ops] == [OpStatus.FAIL] * 3
    assert all("kill-switch-engaged" in (o.error or "") for o in ops)
    finish(ctx)
    # Secrets stay out of argv: the conninfo is in a 0600 file only.
    spec = target.deployment("oms").spec("oms-0")
    assert not any("host=" in a for a in spec.argv)
    assert (Path(spec.argv[-1]).stat().st_mode & 0o777) == 0o600


def test_kill_switch_fails_closed_when_redis_is_unreachable(target: LocalTarget) -> None:
    with taking_orders(target, "fail-closed", faults.redis_reachable) as ctx:
        inject(ctx, "oms.redis_unreachable", faults.redis_unreachable)
        assert probes.kill_switch_state(ctx) == "unknown"
        wait_orders(ctx, 10, "orders during the outage")
        inject(ctx, "oms.redis_reachable", faults.redis_reachable)
        wait_orders_accepted(ctx)  # orders refused while unreadable
        result = checks.kill_switch_fail_closed(ctx)
    show(result)
    assert result.verdict is Verdict.PASS, result
    assert result.measurements["orders_acknowledged_while_unreadable"] == 0
    assert result.measurements["orders_committed_while_unreadable"] == 0
    assert int(result.measurements["orders_while_unreadable"] or 0) >= 10
    assert result.measurements["lost_acknowledged_writes"] == 0


def test_kill_switch_survives_restart(target: LocalTarget) -> None:
    ctx = make_ctx(target, "restart")
    try:
        inject(ctx, "oms.engage_kill_switch", killswitch.engage_kill_switch)
        inject(ctx, "oms.kill", faults.kill)
        assert member_roles(target) == {"oms-0": "down"}
        inject(ctx, "oms.forget_kill_switch", killswitch.forget_kill_switch)
        # No order is placed while the OMS is down: the outage observed is its role above
        # and the start below; the orders afterwards are refused by the kill-switch.
        started = faults.start(ctx)
        print(f"\nrestart: {started.summary} {started.measurements}")
        orders.send_orders(ctx, count=10)
        result = checks.kill_switch_survives_restart(ctx)
    finally:
        finish(ctx)
        for action, args in reversed(ctx.stash["undos"]):
            {"oms.start": faults.start,
             "oms.restore_kill_switch": killswitch.restore_kill_switch}[action](ctx, **args)
    show(result)
    assert result.verdict is Verdict.PASS, result
    assert result.measurements["orders_acknowledged_after_restart"] == 0
    assert result.measurements["orders_committed_after_restart"] == 0


def test_circuit_breaker_opens_and_recovers(target: LocalTarget) -> None:
    with taking_orders(target, "breaker", faults.resume_postgres) as ctx:
        paused = inject(ctx, "oms.pause_postgres_primary", faults.pause_postgres_primary,
                        observe=6.0)
        print(f"\n{paused.summary}")
        wait_orders(ctx, 4, "orders while PostgreSQL is frozen")
        resumed = inject(ctx, "oms.resume_postgres", faults.resume_postgres)
        print(resumed.summary)
        wait_orders_accepted(ctx)  # orders failed while it was frozen
        result = checks.circuit_breaker_opens(ctx)
    show(result)
    assert result.verdict is Verdict.PASS, result
    assert result.measurements["lost_acknowledged_writes"] == 0
    assert int(result.measurements["fast_rejections"] or 0) > 0


def test_simulation_guard_refuses_production_simulation(target: LocalTarget) -> None:
    """No workload: the restart is observed through the refusal the check reads."""
    ctx = make_ctx(target, "guard")
    try:
        inject(ctx, "oms.restart_with", faults.restart_with, environment="production",
               simulation=True, timeout=5.0)
        result = checks.simulation_guard(ctx)
    finally:
        faults.start(ctx)
    show(result)
    assert result.verdict is Verdict.PASS, result
    assert "refusing to start" in result.evidence["log_tail"]
    assert probes.ready(make_ctx(target, "after"))  # the undo brought the real one back


def test_down_leaves_no_process(state: Path) -> None:
    target = make_target(state)
    dep = assert_down_is_clean(target, "oms")
    dep.up()
    assert member_roles(target) == {"oms-0": "ready"}

"""The OMS stand-in against real PostgreSQL (primary + replica) and Redis (primary,
replica, 3 sentinels) on 127.0.0.1: every claim's check on the sound stack. Each broken
variant (a safety setting switched off) is caught by the scenarios run in
test_detection_matrix.py."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drillrunner.core.verdicts import CheckResult, Verdict
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpStatus
from drillrunner.services.oms import checks, faults, killswitch, member_roles, orders, probes
from drillrunner.services.oms.workload import WORKLOAD
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.local.supervisor import port_in_use
from drillrunner.targets.local.target import LocalTarget
from tests.driving import assert_outage_observed, inject, make_ctx
from tests.support import need_binaries, need_module

pytestmark = pytest.mark.integration

PORT_BASE = 24000
SERVICES = ("timescaledb", "redis", "oms")


def make_target(state: Path) -> LocalTarget:
    return LocalTarget(state, StackSettings(port_base=PORT_BASE))


@pytest.fixture(scope="module")
def state() -> Iterator[Path]:
    need_binaries("redis-server", "redis-sentinel",
                  install="the Debian packages redis-server and redis-sentinel")
    need_binaries("/usr/lib/postgresql/15/bin/postgres", install="the Debian package postgresql-15")
    need_python("fastapi", "uvicorn", "httpx")
    # Not under pytest's 0700 basetemp: PostgreSQL runs as the postgres user.
    folder = Path(tempfile.mkdtemp(prefix="drill-oms-"))
    folder.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRILL_STATE_DIR", str(folder))
        try:
            target = make_target(folder)
            for service in SERVICES:
                t0 = time.monotonic()
                target.deployment(service).up()
                print(f"\n{service} up in {time.monotonic() - t0:.2f}s")
            yield folder
        finally:
            target = make_target(folder)
            for service in reversed(SERVICES):
                target.deployment(service).down()
            shutil.rmtree(folder, ignore_errors=True)


def need_python(*modules: str) -> None:
    """The app's packages must be installed (see tests.support.missing)."""
    for module in modules:
        need_module(module, install=f"pip install {module}")


@pytest.fixture
def target(state: Path) -> LocalTarget:
    return make_target(state)


def finish(ctx: RunContext) -> None:
    orders.stop_orders(ctx)
    for client in ctx.workloads.values():
        client.close()


def show(result: CheckResult) -> None:
    print(f"\n{result.verdict}: {result.summary}\n  {result.measurements}")


def test_up_is_idempotent_and_orders_are_blocked_by_default(target: LocalTarget) -> None:
    t0 = time.monotonic()
    target.deployment("oms").up()
    assert time.monotonic() - t0 < 2.0  # running with the same settings: nothing to do
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


def run_fail_closed(target: LocalTarget, scenario: str) -> CheckResult:
    ctx = make_ctx(target, scenario)
    try:
        inject(ctx, "oms.disengage_kill_switch", killswitch.disengage_kill_switch)
        inject(ctx, "oms.start_orders", orders.start_orders, rate=20.0, timeout=2.0)
        inject(ctx, "oms.redis_unreachable", faults.redis_unreachable)
        assert probes.kill_switch_state(ctx) == "unknown"
        n = len(ctx.history.ops(WORKLOAD))
        poll_until(lambda: len(ctx.history.ops(WORKLOAD)) >= n + 10, timeout=20,
                   what="orders during the outage")
        inject(ctx, "oms.redis_reachable", faults.redis_reachable)
        poll_until(lambda: probes.orders_flowing(ctx, settle=0.5), timeout=30,
                   what="orders accepted again")
        assert_outage_observed(ctx.history, WORKLOAD)  # orders refused while unreadable
        result = checks.kill_switch_fail_closed(ctx)
    finally:
        finish(ctx)
        faults.redis_reachable(ctx)
        killswitch.restore_kill_switch(ctx, previous=None)
    show(result)
    return result


def test_kill_switch_fails_closed_when_redis_is_unreachable(target: LocalTarget) -> None:
    result = run_fail_closed(target, "fail-closed")
    assert result.verdict is Verdict.PASS, result
    assert result.measurements["orders_acknowledged_while_unreadable"] == 0
    assert result.measurements["orders_committed_while_unreadable"] == 0
    assert int(result.measurements["orders_while_unreadable"] or 0) >= 10
    assert result.measurements["lost_acknowledged_writes"] == 0


def run_restart(target: LocalTarget, scenario: str) -> CheckResult:
    ctx = make_ctx(target, scenario)
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
    return result


def test_kill_switch_survives_restart(target: LocalTarget) -> None:
    result = run_restart(target, "restart")
    assert result.verdict is Verdict.PASS, result
    assert result.measurements["orders_acknowledged_after_restart"] == 0
    assert result.measurements["orders_committed_after_restart"] == 0


def run_breaker(target: LocalTarget, scenario: str) -> CheckResult:
    ctx = make_ctx(target, scenario)
    try:
        inject(ctx, "oms.disengage_kill_switch", killswitch.disengage_kill_switch)
        inject(ctx, "oms.start_orders", orders.start_orders, rate=20.0, timeout=2.0)
        paused = inject(ctx, "oms.pause_postgres_primary", faults.pause_postgres_primary,
                        observe=6.0)
        print(f"\n{paused.summary}")
        n = len(ctx.history.ops(WORKLOAD))
        poll_until(lambda: len(ctx.history.ops(WORKLOAD)) >= n + 4, timeout=20,
                   what="orders while PostgreSQL is frozen")
        resumed = inject(ctx, "oms.resume_postgres", faults.resume_postgres)
        print(resumed.summary)
        poll_until(lambda: probes.orders_flowing(ctx, settle=0.5), timeout=30,
                   what="orders accepted again")
        assert_outage_observed(ctx.history, WORKLOAD)  # orders failed while it was frozen
        result = checks.circuit_breaker_opens(ctx)
    finally:
        finish(ctx)
        faults.resume_postgres(ctx)
        killswitch.restore_kill_switch(ctx, previous=None)
    show(result)
    return result


def test_circuit_breaker_opens_and_recovers(target: LocalTarget) -> None:
    result = run_breaker(target, "breaker")
    assert result.verdict is Verdict.PASS, result
    assert result.measurements["lost_acknowledged_writes"] == 0
    assert int(result.measurements["fast_rejections"] or 0) > 0


def run_guard(target: LocalTarget, scenario: str) -> CheckResult:
    """No workload: the restart is observed through the refusal the check reads."""
    ctx = make_ctx(target, scenario)
    try:
        inject(ctx, "oms.restart_with", faults.restart_with, environment="production",
               simulation=True, timeout=5.0)
        result = checks.simulation_guard(ctx)
    finally:
        faults.start(ctx)
    show(result)
    return result


def test_simulation_guard_refuses_production_simulation(target: LocalTarget) -> None:
    result = run_guard(target, "guard")
    assert result.verdict is Verdict.PASS, result
    assert "refusing to start" in result.evidence["log_tail"]
    assert probes.ready(make_ctx(target, "after"))  # the undo brought the real one back


def test_down_leaves_no_process(state: Path) -> None:
    target = make_target(state)
    dep = target.deployment("oms")
    dep.down()
    for m in dep.members():
        assert target.pid(m) is None and not port_in_use(m.port)
    dep.up()
    assert member_roles(target) == {"oms-0": "ready"}

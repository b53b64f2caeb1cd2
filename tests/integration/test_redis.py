"""The Redis driver against real servers: primary + replica + 3 sentinels on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from drillrunner.core.verdicts import Verdict
from drillrunner.engine import checks
from drillrunner.services.redis import actions, backup, faults, member_roles, probes
from drillrunner.services.redis.workload import sequenced_writes
from drillrunner.stack.local import LocalTarget
from drillrunner.targets.base import Signal
from tests.driving import (
    Driver,
    assert_outage_observed,
    inject,
    judge_writes,
    make_ctx,
    measure_recovery,
)
from tests.integration.conftest import ServiceStack, assert_down_is_clean, assert_up_is_quick

pytestmark = pytest.mark.integration

STACK = ServiceStack(("redis",), port_base=19000)
WORKLOAD = "redis.sequenced_writes"
RATE = 100.0  # writes per second

state, target = STACK.fixtures()
make_target = STACK.target


class Writer(Driver):
    workload, rate = WORKLOAD, RATE


def roles_by(roles: dict[str, str], role: str) -> list[str]:
    return sorted(n for n, r in roles.items() if r == role)


def test_up_is_idempotent_and_roles_are_discovered(target: LocalTarget) -> None:
    assert_up_is_quick(target, "redis", 2.0)
    roles = member_roles(target)
    assert len(roles_by(roles, "primary")) == 1
    assert len(roles_by(roles, "replica")) == 1
    assert roles_by(roles, "sentinel") == ["sentinel-0", "sentinel-1", "sentinel-2"]
    ctx = make_ctx(target, "probe")
    assert probes.ready(ctx) is True
    assert probes.sentinels_agree(ctx) is True
    assert probes.persistence(ctx) == "aof"
    assert probes.replication_lag(ctx) < 1e6


def test_kill_primary_elects_replica_without_losing_acked_writes(target: LocalTarget) -> None:
    ctx = make_ctx(target, "failover")
    before = member_roles(target)
    old, = roles_by(before, "primary")
    with Writer(ctx, sequenced_writes(ctx, timeout=0.5)) as w:
        w.survive_member_loss("redis.kill_primary", faults.kill_primary, old,
                              "redis.restart_member", signal=Signal.KILL)
    rto, lost = judge_writes(ctx, WORKLOAD, rto=15.0)
    print(f"\nfailover: {rto.summary}; {lost.summary}")
    assert rto.verdict is Verdict.PASS, rto
    assert lost.verdict is Verdict.PASS, lost
    roles = member_roles(target)
    assert roles[old] == "down" and roles_by(roles, "primary") != [old]
    # The undo: the old primary rejoins as a replica of the new one.
    t0 = time.monotonic()
    actions.restart_member(ctx, member=old)
    print(f"old primary rejoined in {time.monotonic() - t0:.2f}s")
    assert member_roles(target)[old] == "replica"
    assert probes.ready(ctx)


def test_restart_persistence_with_aof_loses_nothing(target: LocalTarget) -> None:
    """The same tier without AOF (redis.appendonly=false) must lose writes: that variant
    runs as a scenario in test_detection_matrix.py."""
    ctx = make_ctx(target, "restart-aof")
    with Writer(ctx, sequenced_writes(ctx, timeout=0.5)) as w:
        w.wait_ok(100)
        inject(ctx, "redis.kill_all", faults.kill_all)
        assert set(member_roles(target).values()) == {"down"}
        t0 = time.monotonic()
        actions.restart_all(ctx)
        print(f"\nrestart_all ready in {time.monotonic() - t0:.2f}s")
        w.wait_recovered(ctx.history.faults()[0].returned)
    rto, lost = judge_writes(ctx, WORKLOAD, rto=30.0)
    print(f"{rto.summary}; {lost.summary}")
    assert rto.verdict is Verdict.PASS
    assert lost.verdict is Verdict.PASS
    assert lost.measurements["lost_acknowledged_writes"] == 0


def test_snapshot_destroy_restore_brings_back_acked_keys(target: LocalTarget) -> None:
    ctx = make_ctx(target, "backup-restore")
    with Writer(ctx, sequenced_writes(ctx, timeout=0.5)) as w:
        w.wait_ok(100)
        snap = backup.snapshot(ctx)
        assert "dump.rdb" in snap.detail["files"]
        w.wait_ok(50)
        inject(ctx, "redis.destroy_tier", faults.destroy_tier)
        assert ctx.stash["undos"] == [
            ("redis.recover_tier", {"snapshot": ctx.stash["redis.snapshot"]["path"]})]
        restored = backup.restore_snapshot(ctx)
        w.wait_recovered(ctx.history.faults()[0].returned)
    assert_outage_observed(ctx.history, WORKLOAD)
    print(f"\nrestore: {restored.summary}")
    result = backup.snapshot_restored(ctx)
    print(result.summary, result.measurements)
    assert result.verdict is Verdict.PASS, result
    assert result.measurements["lost_acknowledged_writes"] == 0
    assert probes.persistence(ctx) == "aof"  # AOF was switched on after loading the RDB
    # The undo must not restore again over a live tier.
    again = actions.recover_tier(ctx, snapshot=ctx.stash["redis.snapshot"]["path"])
    assert again.members == []


def test_pause_primary_then_resume(target: LocalTarget) -> None:
    ctx = make_ctx(target, "pause")
    old, = roles_by(member_roles(target), "primary")
    with Writer(ctx, sequenced_writes(ctx, timeout=0.5)) as w:
        inject(ctx, "redis.pause_member", faults.pause_member, member=old)
        assert member_roles(target)[old] == "paused"
        w.wait_recovered(ctx.history.faults()[0].returned)
        actions.resume_member(ctx, member=old)
    assert member_roles(target)[old] == "replica"
    # A frozen primary is only seen as down once writes time out: they must have.
    stalled = assert_outage_observed(ctx.history, WORKLOAD)
    measure_recovery(ctx)
    rto = checks.recovered_within_slo(ctx, rto=15.0)
    lost = checks.no_acknowledged_write_lost(ctx)
    print(f"\npause: {stalled} writes failed or stalled; {rto.summary}; {lost.summary}")
    assert rto.verdict is Verdict.PASS, rto
    assert lost.verdict is Verdict.PASS, lost
    # Writes the frozen primary took in before the failover were never acknowledged (they
    # timed out): the resumed, demoted primary must not make any acknowledged one vanish.
    assert lost.measurements["lost_acknowledged_writes"] == 0
    assert int(lost.measurements["acknowledged_writes"] or 0) > 0


def test_down_leaves_no_process(state: Path) -> None:
    target = make_target(state)
    deployment = assert_down_is_clean(target, "redis")
    deployment.up()  # up() after down() brings the same data back
    assert probes.ready(make_ctx(target, "after-down"))

"""The Kafka driver against a real 3-node KRaft quorum (combined broker + controller) on
127.0.0.1, with the jars fetched from Maven Central into the cache."""

from __future__ import annotations

import time

import pytest

from drillrunner.core.verdicts import Verdict
from drillrunner.core.waiting import poll_until
from drillrunner.engine import checks
from drillrunner.services.kafka import actions, faults, member_roles, probes
from drillrunner.services.kafka import checks as kchecks
from drillrunner.services.kafka.workload import Acks, sequenced_produces
from drillrunner.stack.local import LocalTarget
from tests.driving import Driver, inject, judge_writes, make_ctx
from tests.integration.conftest import ServiceStack, assert_up_is_quick

pytestmark = pytest.mark.integration

WORKLOAD = "kafka.sequenced_produces"
RATE = 100.0  # produces per second


state, target = ServiceStack(("kafka",), port_base=22000).fixtures()


class Writer(Driver):
    workload, rate = WORKLOAD, RATE
    start_timeout = 30.0
    noun = "acknowledged produces"


def with_role(roles: dict[str, str], role: str) -> list[str]:
    return sorted(n for n, r in roles.items() if r.split("+")[0] == role)


def test_up_is_idempotent_and_roles_are_discovered(target: LocalTarget) -> None:
    assert_up_is_quick(target, "kafka", 5.0)
    roles = member_roles(target)
    print(f"\nroles: {roles}")
    assert len(with_role(roles, "leader")) == 1
    assert len(with_role(roles, "follower")) == 2
    assert sum(r.endswith("+controller") for r in roles.values()) == 1
    ctx = make_ctx(target, "probe")
    assert probes.ready(ctx) is True
    assert probes.in_sync_replicas(ctx) == 3
    assert probes.min_insync_replicas(ctx) == 2
    assert probes.controller(ctx) in roles


def test_kill_leader_loses_no_acked_write_with_acks_all(target: LocalTarget) -> None:
    ctx = make_ctx(target, "leader-loss")
    old, = with_role(member_roles(target), "leader")
    with Writer(ctx, sequenced_produces(ctx, acks=Acks.ALL, timeout=2.0)) as w:
        w.wait_ok(100)
        w.survive_member_loss("kafka.kill_leader", faults.kill_leader, old,
                              "kafka.restart_member")
        w.wait_ok(100)
    rto, lost = judge_writes(ctx, WORKLOAD, rto=30.0)
    offsets = kchecks.acknowledged_offsets_intact(ctx)
    print(f"\nkill leader {old}, acks=all: {rto.summary}; {lost.summary}; {offsets.summary}")
    assert rto.verdict is Verdict.PASS, rto
    assert lost.verdict is Verdict.PASS, lost
    assert offsets.verdict is Verdict.PASS, offsets
    assert offsets.measurements["duplicate_messages"] == 0
    # The same history judged against an SLO it cannot meet: the check FAILS with figures.
    tight = checks.recovered_within_slo(ctx, rto=0.05)
    assert tight.verdict is Verdict.FAIL and tight.measurements["rto_seconds"]
    roles = member_roles(target)
    assert roles[old] == "down" and with_role(roles, "leader") != [old]
    t0 = time.monotonic()
    actions.restart_member(ctx, member=old)
    print(f"{old} restarted and ISR full again in {time.monotonic() - t0:.1f}s")
    assert member_roles(target)[old].split("+")[0] in ("follower", "leader")
    assert probes.in_sync_replicas(ctx) == 3


def test_acks1_with_lagging_followers_loses_acked_writes(target: LocalTarget) -> None:
    """acks=1: the leader acknowledges before any follower has the message. Followers that
    lag (frozen here) when the leader dies become leader from the ISR without those
    messages: acknowledged writes are lost, and the checks must FAIL."""
    ctx = make_ctx(target, "leader-loss-acks1")
    old, = with_role(member_roles(target), "leader")
    with Writer(ctx, sequenced_produces(ctx, acks=Acks.ONE, timeout=2.0)) as w:
        w.wait_ok(50)
        inject(ctx, "kafka.pause_followers", faults.pause_followers)
        w.wait_ok(100)  # acknowledged by the leader alone
        inject(ctx, "kafka.kill_leader", faults.kill_leader)
        actions.resume_all(ctx, wait=False)
        w.wait_recovered(ctx.history.faults()[-1].returned, timeout=90)
        w.wait_ok(50)
    rto, lost = judge_writes(ctx, WORKLOAD, rto=60.0, from_fault="kafka.kill_leader")
    offsets = kchecks.acknowledged_offsets_intact(ctx)
    print(f"\nacks=1, followers frozen, leader {old} killed: {rto.summary}; {lost.summary}; "
          f"{offsets.summary}")
    assert lost.verdict is Verdict.FAIL, lost
    assert int(lost.measurements["lost_acknowledged_writes"] or 0) > 0
    assert offsets.verdict is Verdict.FAIL, offsets
    actions.restart_member(ctx, member=old)
    assert probes.ready(ctx)


def test_pause_follower_then_resume(target: LocalTarget) -> None:
    ctx = make_ctx(target, "pause")
    roles = member_roles(target)
    victim = with_role(roles, "follower")[0]
    with Writer(ctx, sequenced_produces(ctx, acks=Acks.ALL, timeout=2.0)) as w:
        inject(ctx, "kafka.pause_member", faults.pause_member, member=victim)
        assert member_roles(target)[victim] == "paused"
        # acks=all waits for every ISR member until the frozen one leaves the ISR (5 s).
        poll_until(lambda: probes.in_sync_replicas(ctx) == 2, timeout=30,
                   what=f"{victim} to leave the ISR")
        w.wait_recovered(ctx.history.faults()[0].returned)
        t0 = time.monotonic()
        actions.resume_member(ctx, member=victim)
        print(f"\n{victim} resumed, ISR full again in {time.monotonic() - t0:.1f}s")
        w.wait_ok(50)
    rto, lost = judge_writes(ctx, WORKLOAD, rto=30.0)  # acks=all stalled on the frozen follower
    print(f"pause follower {victim}: {rto.summary}; {lost.summary}")
    assert rto.verdict is Verdict.PASS, rto
    assert lost.verdict is Verdict.PASS, lost
    assert member_roles(target)[victim].split("+")[0] == "follower"


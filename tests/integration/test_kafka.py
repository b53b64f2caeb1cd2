"""The Kafka driver against a real 3-node KRaft quorum (combined broker + controller) on
127.0.0.1, with the jars fetched from Maven Central into the cache."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drillrunner.core.verdicts import Verdict
from drillrunner.core.waiting import poll_until
from drillrunner.engine import checks
from drillrunner.services.kafka import actions, faults, member_roles, probes
from drillrunner.services.kafka import checks as kchecks
from drillrunner.services.kafka import local as local_kafka
from drillrunner.services.kafka.workload import Acks, sequenced_produces
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.local.target import LocalTarget
from tests.driving import (
    Driver,
    assert_outage_observed,
    inject,
    make_ctx,
    measure_recovery,
)
from tests.support import missing, need_binaries, need_module

pytestmark = pytest.mark.integration

PORT_BASE = 22000
WORKLOAD = "kafka.sequenced_produces"
RATE = 100.0  # produces per second


def make_target(state: Path) -> LocalTarget:
    return LocalTarget(state, StackSettings(port_base=PORT_BASE))


def need_kafka_jars() -> None:
    try:
        local_kafka.check_jars()
    except Exception as exc:
        missing(str(exc))


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    need_binaries("java", install="openjdk-17-jre-headless")
    need_kafka_jars()
    need_module("confluent_kafka", install="pip install confluent-kafka")
    folder = tmp_path_factory.mktemp("drill-kafka")
    folder.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRILL_STATE_DIR", str(folder))
        try:
            t0 = time.monotonic()
            make_target(folder).deployment("kafka").up()
            print(f"\nkafka up (format + 3 JVMs + topic, ISR 3) in {time.monotonic() - t0:.1f}s")
            yield folder
        finally:
            make_target(folder).deployment("kafka").down()


@pytest.fixture
def target(state: Path) -> LocalTarget:
    return make_target(state)


class Writer(Driver):
    workload, rate = WORKLOAD, RATE
    start_timeout = 30.0
    noun = "acknowledged produces"


def with_role(roles: dict[str, str], role: str) -> list[str]:
    return sorted(n for n, r in roles.items() if r.split("+")[0] == role)


def test_up_is_idempotent_and_roles_are_discovered(target: LocalTarget) -> None:
    t0 = time.monotonic()
    target.deployment("kafka").up()
    assert time.monotonic() - t0 < 5.0  # nothing to start, already ready
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
        result = inject(ctx, "kafka.kill_leader", faults.kill_leader)
        assert result.members == [old]
        assert ctx.stash["undos"] == [("kafka.restart_member", {"member": old})]
        w.wait_recovered(ctx.history.faults()[0].returned)
        w.wait_ok(100)
    assert_outage_observed(ctx.history, WORKLOAD)
    measure_recovery(ctx)
    rto = checks.recovered_within_slo(ctx, rto=30.0)
    lost = checks.no_acknowledged_write_lost(ctx)
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
    assert_outage_observed(ctx.history, WORKLOAD)
    measure_recovery(ctx)
    rto = checks.recovered_within_slo(ctx, rto=60.0, from_fault="kafka.kill_leader")
    lost = checks.no_acknowledged_write_lost(ctx)
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
    assert_outage_observed(ctx.history, WORKLOAD)  # acks=all stalled on the frozen follower
    measure_recovery(ctx)
    rto = checks.recovered_within_slo(ctx, rto=30.0)
    lost = checks.no_acknowledged_write_lost(ctx)
    print(f"pause follower {victim}: {rto.summary}; {lost.summary}")
    assert rto.verdict is Verdict.PASS, rto
    assert lost.verdict is Verdict.PASS, lost
    assert member_roles(target)[victim].split("+")[0] == "follower"


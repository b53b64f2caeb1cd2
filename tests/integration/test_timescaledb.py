"""The TimescaleDB driver against real PostgreSQL servers under Patroni (etcd as its DCS).

One stack for the module on port base 18000, in a temp folder the postgres user can enter.
Tests run in file order and each leaves the stack healthy (one primary, one streaming
replica), whichever member is the primary. Point-in-time restores: test_pgbackrest.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from drillrunner.core.verdicts import Verdict
from drillrunner.core.waiting import poll_until
from drillrunner.engine.checks import no_acknowledged_write_lost, recovered_within_slo
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpUnknown
from drillrunner.services.timescaledb import faults, ha, member_roles, probes, repair
from drillrunner.services.timescaledb.workload import sequenced_writes
from drillrunner.stack.local import LocalTarget
from drillrunner.targets.local.supervisor import process_state
from tests.driving import Driver, assert_outage_observed, inject, make_ctx, measure_recovery
from tests.integration.conftest import ServiceStack, assert_up_is_quick

pytestmark = pytest.mark.integration

state, target = ServiceStack(("etcd", "timescaledb"), port_base=18000).fixtures()
WORKLOAD = "timescaledb.sequenced_writes"

SLO = {"rto": 30.0, "lost_acknowledged_writes": 0}


class Writer(Driver):
    """timescaledb.sequenced_writes at 50/s; no successes awaited on entry."""

    workload, rate, start_ok, noun = WORKLOAD, 50.0, 0, "acked writes"

    def __init__(self, ctx: RunContext, timeout: float = 1.0) -> None:
        super().__init__(ctx, sequenced_writes(ctx, timeout=timeout))


def primary_and_replica(target: LocalTarget) -> tuple[str, str]:
    roles = member_roles(target)
    assert sorted(roles.values()) == ["primary", "replica"], roles
    primary = next(n for n, r in roles.items() if r == "primary")
    return primary, next(n for n in roles if n != primary)


def heal(ctx: RunContext) -> None:
    """Run the recorded undos newest first, as the engine does, then the rollback."""
    undos: list[tuple[str, dict[str, Any]]] = ctx.stash["undos"]
    actions = {
        "timescaledb.rejoin_member": repair.rejoin_member,
        "timescaledb.heal_cluster": repair.heal_cluster,
        "timescaledb.resume_walreceiver": repair.resume_walreceiver,
        "timescaledb.resume_member": repair.resume_member,
    }
    for name, args in reversed(undos):
        actions[name](ctx, **args)
    undos.clear()
    repair.heal_cluster(ctx)
    poll_until(lambda: probes.replica_streaming(ctx), timeout=30, what="a streaming replica")


def test_up_is_idempotent_and_roles_come_from_patroni_and_the_servers(
    target: LocalTarget,
) -> None:
    assert_up_is_quick(target, "timescaledb", 3.0)
    primary, replica = primary_and_replica(target)
    ctx = make_ctx(target, slo=SLO)
    assert probes.ready(ctx) is True
    assert probes.replica_streaming(ctx) is True
    assert probes.writable(ctx) is True
    assert probes.replication_lag(ctx) < 1.0
    dep = target.deployment("timescaledb")
    # Patroni's view agrees with the servers', and the standby is the synchronous one.
    assert dep.patroni_roles() == {primary: "primary", replica: "replica"}
    assert dep.leader() == primary
    by_name = {m["name"]: m["role"] for m in dep.cluster_state()}
    assert by_name == {primary: "leader", replica: "sync_standby"}
    assert "PostgreSQL" in dep.versions()["timescaledb"]


def test_sync_commit_blocked_by_a_frozen_walreceiver_ends_unknown_in_time(
    target: LocalTarget,
) -> None:
    ctx = make_ctx(target, slo=SLO)
    client = sequenced_writes(ctx, timeout=0.5)
    client.write(1)
    inject(ctx, "pause_walreceiver", faults.pause_walreceiver)
    try:
        started = time.monotonic()
        # The outage observed: a commit that stalls, ending unknown at its deadline.
        with pytest.raises(OpUnknown):
            client.write(2)
        assert time.monotonic() - started < 1.5  # the deadline, not a hang
        assert probes.writable(ctx, timeout=0.5) is False
        poll_until(lambda: probes.replica_streaming(ctx) is False, timeout=10,
                   what="the frozen standby to count as not streaming")
        assert probes.replication_lag(ctx) >= 1.0
    finally:
        heal(ctx)
    poll_until(lambda: client.read_back({2}) == {2}, timeout=10, what="write 2 replicated")
    client.write(3)  # a fresh connection after the abandoned one
    assert client.read_back({1, 2, 3}) == {1, 2, 3}
    client.close()


def test_patroni_promotes_the_standby_when_the_leader_is_killed(target: LocalTarget) -> None:
    """No promotion by drill: the kill, then Patroni's own failover, within the window its
    settings predict (ttl - loop_wait .. ttl + loop_wait, plus the client's reconnect)."""
    ctx = make_ctx(target, "timescaledb-primary-failover", slo=SLO)
    old_primary, old_replica = primary_and_replica(target)
    ha.watch_primaries(ctx)
    with Writer(ctx) as w:
        w.wait_ok(30)
        inject(ctx, "kill_primary", faults.kill_primary)
        assert member_roles(target)[old_primary] == "down"
        w.wait_ok(60, timeout=40)
    assert_outage_observed(ctx.history, WORKLOAD)
    assert ctx.stash["undos"][0] == ("timescaledb.rejoin_member", {"member": old_primary})
    loss = no_acknowledged_write_lost(ctx)
    measure_recovery(ctx)
    rto = recovered_within_slo(ctx)
    single = ha.single_writable_primary(ctx)
    print(f"\nPatroni failover: {rto.summary}; {loss.summary}; {single.summary}")
    assert loss.verdict is Verdict.PASS, loss
    assert loss.measurements["acknowledged_writes"] > 50  # type: ignore[operator]
    assert rto.verdict is Verdict.PASS, rto
    predicted = ha.failover_as_predicted(ctx, from_fault="kill_primary")
    assert predicted.verdict is Verdict.PASS, predicted
    assert single.verdict is Verdict.PASS, single
    assert [r["member"] for r in single.evidence["reigns"]] == [old_primary, old_replica]
    heal(ctx)  # the killed member rejoins (pg_rewind by Patroni) as the new standby
    assert primary_and_replica(target) == (old_replica, old_primary)
    assert probes.ready(ctx) is True


def test_a_failover_slower_than_patronis_settings_predict_fails_the_check(
    target: LocalTarget,
) -> None:
    """The standby's Patroni stuck (frozen) for 26 s after the leader dies: the promotion
    comes late, beyond ttl + loop_wait + slack, and failover_as_predicted reports it."""
    ctx = make_ctx(target, "timescaledb-primary-failover", slo=SLO)
    old_primary, old_replica = primary_and_replica(target)
    dep = target.deployment("timescaledb")
    try:
        with Writer(ctx) as w:
            w.wait_ok(20)
            patroni_pid = target.sup.pid(old_replica)
            assert patroni_pid is not None
            dep.pause_process(old_replica, patroni_pid)
            try:
                inject(ctx, "timescaledb.kill_primary", faults.kill_primary)
                time.sleep(26)  # the stuck loop under test, not a wait for a condition
            finally:
                dep.resume_process(old_replica, patroni_pid)
            w.wait_ok(20, timeout=50)
        measure_recovery(ctx)
        late = ha.failover_as_predicted(ctx)
        print(f"\nstuck standby Patroni: {late.summary}")
    finally:
        heal(ctx)
    assert late.verdict is Verdict.FAIL, late
    assert float(late.measurements["fault_to_recovery_s"]) > 24  # type: ignore[arg-type]
    assert primary_and_replica(target) == (old_replica, old_primary)


def test_lagging_replica_failover_loses_no_acknowledged_write(target: LocalTarget) -> None:
    """Synchronous replication: commits stall while the WAL stream is frozen, none is
    lost. The asynchronous stack (timescaledb.synchronous=false) must lose some: that
    variant runs as a scenario in test_detection_matrix.py."""
    ctx = make_ctx(target, "timescaledb-replica-lag-failover", slo=SLO)
    _, replica = primary_and_replica(target)
    with Writer(ctx) as w:
        w.wait_ok(20)
        inject(ctx, "pause_walreceiver", faults.pause_walreceiver)
        w.wait_failed(2)  # the replica is behind: commits stall until their deadline
        inject(ctx, "kill_primary", faults.kill_primary)
        repair.resume_walreceiver(ctx, member=replica)
        w.wait_ok(20, timeout=40)
    stalled = assert_outage_observed(ctx.history, WORKLOAD)
    loss = no_acknowledged_write_lost(ctx)
    measure_recovery(ctx)
    rto = recovered_within_slo(ctx, from_fault="kill_primary")
    print(f"\nlagging replica: {stalled} commits stalled or failed; {loss.summary}; "
          f"{rto.summary}")
    heal(ctx)
    assert loss.verdict is Verdict.PASS, loss
    assert loss.measurements["lost_acknowledged_writes"] == 0
    assert rto.verdict is Verdict.PASS, rto


def test_a_frozen_leader_is_replaced_and_takes_no_write_after_it_thaws(
    target: LocalTarget,
) -> None:
    ctx = make_ctx(target, "timescaledb-primary-freeze", slo=SLO)
    old_primary, old_replica = primary_and_replica(target)
    ha.watch_primaries(ctx)
    try:
        with Writer(ctx) as w:
            w.wait_ok(20)
            inject(ctx, "pause_member", faults.pause_member)
            assert member_roles(target)[old_primary] == "paused"
            poll_until(lambda: member_roles(target)[old_replica] == "primary", timeout=45,
                       what="Patroni to promote the standby")
            repair.resume_member(ctx)  # thawed while the new primary takes writes
            w.wait_ok(50, timeout=30)
        assert_outage_observed(ctx.history, WORKLOAD)
        single = ha.single_writable_primary(ctx)
        loss = no_acknowledged_write_lost(ctx)
        print(f"\nfrozen leader: {single.summary}; {loss.summary}")
    finally:
        heal(ctx)  # whatever happened: the next test finds a healthy cluster
    assert single.verdict is Verdict.PASS, single
    assert loss.verdict is Verdict.PASS, loss
    assert primary_and_replica(target) == (old_replica, old_primary)


def test_switchover_swaps_the_roles_with_a_short_outage(target: LocalTarget) -> None:
    ctx = make_ctx(target, "timescaledb-switchover", slo=SLO)
    old_primary, old_replica = primary_and_replica(target)
    ha.watch_primaries(ctx)
    try:
        with Writer(ctx) as w:
            w.wait_ok(20)
            done = inject(ctx, "switchover", ha.switchover)
            w.wait_ok(30)
        single = ha.single_writable_primary(ctx)
        loss = no_acknowledged_write_lost(ctx)
        print(f"\nswitchover: {done.summary}; {single.summary}; {loss.summary}")
    finally:
        heal(ctx)
    assert done.members == [old_primary, old_replica]
    assert float(done.measurements["ready_seconds"]) < 15  # type: ignore[arg-type]
    assert single.verdict is Verdict.PASS, single
    assert loss.verdict is Verdict.PASS, loss
    assert primary_and_replica(target) == (old_replica, old_primary)


def test_rejoin_with_force_reinitializes_a_replica(target: LocalTarget) -> None:
    ctx = make_ctx(target, slo=SLO)
    _, replica = primary_and_replica(target)
    inject(ctx, "kill_member", faults.kill_member, member=replica)
    # No workload here: the outage is observed by the probes.
    assert probes.replica_streaming(ctx) is False
    assert probes.ready(ctx) is False
    result = repair.rejoin_member(ctx, member=replica, force=True)
    assert "reinitialized" in result.summary
    assert probes.replica_streaming(ctx) is True
    again = repair.rejoin_member(ctx, member=replica)
    assert "rejoined" in again.summary
    assert probes.writable(ctx) is True


def test_down_leaves_no_process(target: LocalTarget) -> None:
    dep = target.deployment("timescaledb")
    names = [m.name for m in dep.members()]
    pids = [target.sup.pid(n) for n in names]
    assert all(pids)
    dep.down()
    for pid in pids:
        assert pid is not None
        poll_until(lambda p=pid: process_state(p) in (None, "Z"), timeout=5,  # type: ignore[misc]
                   what=f"pid {pid} gone")
    assert all(target.sup.pid(n) is None for n in names)
    # Started again on the same data folders, the roles are found from the servers.
    dep.up()
    primary_and_replica(target)
    dep.down()
    assert not any(process_state(p) not in (None, "Z") for p in pids if p)

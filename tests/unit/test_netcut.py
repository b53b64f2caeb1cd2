"""Network faults on the local target: the nft rules drill renders and how fault groups
become pairs. The rules at work on real servers: tests/integration/test_network.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from drillrunner.core.errors import ActionFailed
from drillrunner.services.network_faults import Direction, _pairs
from drillrunner.targets.local import netcut
from drillrunner.targets.network import CLIENTS, Drop

MOUNTS = """\
sysfs /sys sysfs rw,nosuid 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec 0 0
"""


def test_the_cgroup2_hierarchy_is_found_where_it_is_mounted() -> None:
    assert netcut.cgroup2_mount(MOUNTS) == Path("/sys/fs/cgroup/unified")
    assert netcut.cgroup2_mount("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n") is None


def test_each_stack_has_its_own_cgroups_and_members_join_before_exec(tmp_path: Path) -> None:
    a, b = netcut.Cgroups(tmp_path / "a", tmp_path), netcut.Cgroups(tmp_path / "b", tmp_path)
    assert a.name != b.name and a.name.startswith("drill-")
    argv = a.wrap("redis-0", ["redis-server", "x.conf"], None)
    assert argv == ["/bin/sh", "-c", 'echo 0 > "$0" && exec "$@"',
                    str(tmp_path / a.name / "redis-0" / "cgroup.procs"), "redis-server", "x.conf"]
    as_postgres = a.wrap("tsdb-0", ["patroni", "p.yml"], "postgres")
    assert as_postgres is not None and "--init-groups" in as_postgres
    assert as_postgres[-2:] == ["patroni", "p.yml"]
    assert a.members() == ["redis-0", "tsdb-0"]
    assert netcut.Cgroups(tmp_path / "c", None).wrap("x", ["x"], None) is None  # no cgroup2


def test_a_rule_names_the_sender_by_its_mark_and_the_receiver_by_its_cgroup() -> None:
    r = netcut.rule("drill-1", "tsdb-0", "etcd-0", Drop(), "t1")
    mark = netcut.mark_of("tsdb-0")
    assert r == (f'meta mark {mark:#x} socket cgroupv2 level 2 "drill-1/etcd-0" drop '
                 'comment "t1 tsdb-0->etcd-0 cut"')
    # A member's mark depends on its name only, and the stack's names do not collide.
    from drillrunner.services.registry import REGISTRY

    names = [n for spec in REGISTRY.services for n in spec.ports]
    assert len({netcut.mark_of(n) for n in names}) == len(names)
    assert all(netcut.mark_of(n) & 0xFFFF0000 == netcut.MARK_BASE for n in names)
    to_clients = netcut.rule("drill-1", "etcd-0", CLIENTS, Drop(percent=30), "t2")
    assert 'socket cgroupv2 level 1 != "drill-1"' in to_clients
    assert "numgen random mod 100 < 30 drop" in to_clients
    from_clients = netcut.rule("drill-1", CLIENTS, "etcd-0",
                               Drop(bytes_per_second=65536), "t3")
    assert from_clients.startswith("meta mark 0 ")
    assert "limit rate over 65536 bytes/second drop" in from_clients
    with pytest.raises(ValueError):
        netcut.rule("drill-1", "etcd-0", "etcd-0", Drop(), "t4")


def test_groups_become_directed_pairs() -> None:
    assert _pairs(["a"], ["b", "c"], Direction.BOTH) == [
        ("a", "b"), ("a", "c"), ("b", "a"), ("c", "a")]
    assert _pairs(["a"], ["b"], Direction.A_TO_B) == [("a", "b")]
    assert _pairs(["a"], ["b"], Direction.B_TO_A) == [("b", "a")]
    with pytest.raises(ActionFailed, match="a on both sides"):
        _pairs(["a"], ["a", "b"], Direction.BOTH)


def test_without_cgroup2_the_fault_refuses_in_one_line(tmp_path: Path) -> None:
    cuts = netcut.NetCuts(netcut.Cgroups(tmp_path, None))
    why = cuts.problem()
    assert why is not None and "\n" not in why
    assert why.startswith("network faults need nftables") and "no cgroup v2" in why
    with pytest.raises(ActionFailed, match="no cgroup v2"):
        cuts.apply("t", [("a", "b")], Drop())


def test_a_stopped_member_leaves_no_cgroup_behind(tmp_path: Path) -> None:
    """A real process in a real cgroup (where this machine has cgroup v2): it is in its
    member's cgroup while it runs, and stopping it removes the cgroup and the stack's."""
    import socket
    import sys

    from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor

    sup = Supervisor(tmp_path)
    if sup.cgroups.problem() is not None:
        assert sup.cgroups.wrap("echo-0", ["true"], None) is None
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = ProcessSpec(name="echo-0", port=port, log=tmp_path / "echo.log", cwd=tmp_path,
                       argv=[sys.executable, "-m", "http.server", str(port),
                             "--bind", "127.0.0.1"])
    pid = sup.start(spec)
    try:
        assert sup.cgroups.pids("echo-0") == [pid]
    finally:
        sup.stop("echo-0")
    assert sup.cgroups.base is not None and not sup.cgroups.base.exists()

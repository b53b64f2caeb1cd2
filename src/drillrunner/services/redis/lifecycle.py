"""Starting members so they rejoin the topology as it is now (not as it was at setup)."""

from __future__ import annotations

from drillrunner.services.redis.ops import RedisOps
from drillrunner.services.redis.topology import Readiness, wait_ready
from drillrunner.targets.base import MemberRef, Target


def start_member(target: Target, ops: RedisOps, member: MemberRef) -> bool:
    """Start `member` if it is not running; True if it was started.

    A server is configured as a replica of the current primary before it starts: it
    rejoins at once instead of coming up as a second primary that Sentinel demotes only
    ~15 s later (measured), taking writes meanwhile from clients that still reach it.
    """
    if target.is_running(member):
        return False
    master = ops.current_master()
    if member.kind == "sentinel":
        ops.prepare_sentinel(member.name, master)
    else:
        ops.prepare_server(member.name, None if master.name == member.name else master)
    target.start(member)
    return True


def start_all(target: Target, ops: RedisOps, timeout: float) -> tuple[list[str], Readiness]:
    """Start every member that is not running (primary first, then replicas, then
    sentinels) and wait for real readiness. Returns the started names."""
    master = ops.current_master()
    servers = sorted(ops.servers(), key=lambda s: s.name != master.name)
    started: list[str] = []
    for member in [*servers, *ops.sentinels()]:
        if start_member(target, ops, member):
            started.append(member.name)
    return started, wait_ready(ops.servers(), ops.sentinels(), timeout=timeout, ops=ops)


def current_primary(target: Target, ops: RedisOps) -> MemberRef:
    """The live primary: the sentinels' choice if it is a running primary."""
    from drillrunner.core.errors import ActionFailed
    from drillrunner.services.redis.topology import Role, member_role

    master = ops.current_master()
    if member_role(target, master) is Role.PRIMARY:
        return master
    for server in ops.servers():
        if member_role(target, server) is Role.PRIMARY:
            return server
    raise ActionFailed("no running Redis primary found")

"""Live roles of the etcd members, read from the members themselves."""

from __future__ import annotations

from enum import StrEnum

from drillrunner.services.etcd import client
from drillrunner.services.paused import is_stopped
from drillrunner.targets.base import MemberRef, Target

SERVICE = "etcd"


class Role(StrEnum):
    LEADER = "leader"
    FOLLOWER = "follower"
    NO_LEADER = "no-leader"  # answers, but follows no leader (no quorum)
    UNRESPONSIVE = "unresponsive"
    PAUSED = "paused"
    DOWN = "down"


def member_roles(target: Target) -> dict[str, str]:
    roles: dict[str, str] = {}
    for m in target.members(SERVICE):
        roles[m.name] = _role(target, m)
    return roles


def _role(target: Target, member: MemberRef) -> Role:
    if not target.is_running(member):
        return Role.DOWN
    if is_stopped(target, member):
        return Role.PAUSED
    try:
        st = client.status(member)
    except (client.Unreachable, TimeoutError, RuntimeError):
        return Role.UNRESPONSIVE
    me, leader = st.get("header", {}).get("member_id"), st.get("leader")
    if not leader or leader == "0":
        return Role.NO_LEADER
    return Role.LEADER if me == leader else Role.FOLLOWER


def leader(target: Target) -> MemberRef | None:
    """The member every answering member agrees leads, None if there is none."""
    found = [m for m in target.members(SERVICE) if _role(target, m) == Role.LEADER]
    return found[0] if len(found) == 1 else None

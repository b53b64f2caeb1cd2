"""Read-only observations of the etcd cluster, asked of the members themselves."""

from __future__ import annotations

from drillrunner.core.actions import probe
from drillrunner.engine.context import RunContext
from drillrunner.services.etcd import client
from drillrunner.services.etcd.topology import SERVICE, Role, member_roles


def quorum_members(ctx: RunContext) -> int:
    """How many members serve a linearizable read now."""
    serving = 0
    for m in ctx.target.members(SERVICE):
        try:
            client.quorum_read(m)
        except (client.Unreachable, TimeoutError, RuntimeError):
            continue
        serving += 1
    return serving


@probe("etcd.quorum")
def quorum(ctx: RunContext) -> bool:
    """A majority of the members serve linearizable reads: the cluster can elect, and
    a leader lock kept in it can be renewed."""
    return quorum_members(ctx) * 2 > len(ctx.target.members(SERVICE))


@probe("etcd.serving_members")
def serving_members(ctx: RunContext) -> int:
    """How many members serve linearizable reads (0 while the quorum is lost)."""
    return quorum_members(ctx)


@probe("etcd.leaders")
def leaders(ctx: RunContext) -> int:
    """How many members say they lead: exactly 1 in a healthy cluster."""
    return sum(1 for r in member_roles(ctx.target).values() if r == Role.LEADER)

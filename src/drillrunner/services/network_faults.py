"""Network faults between groups of members, and their undo, for any target that can cut
its network (targets/network.py).

A group is a list of selectors, resolved against the live stack when the fault is injected:
a member (`tsdb-0`), a service (`etcd`: all its members), a service and a live role
(`timescaledb:primary`, `redis:replica`, `kafka:controller`: the roles `drill stack status`
shows, one of the `+`-joined words), or `clients` (the workload and drill's own probes).
The undo is journaled before any rule is added and lifts exactly this fault's rules.
"""

from __future__ import annotations

import threading
import uuid
from enum import StrEnum

from drillrunner.core.actions import action, fault
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext
from drillrunner.services.registry import REGISTRY, live_roles
from drillrunner.targets.base import Target
from drillrunner.targets.network import CLIENTS, CutsNetwork, Drop, NetworkCuts


class Direction(StrEnum):
    BOTH = "both"
    A_TO_B = "a_to_b"  # side_a's packets to side_b are dropped; side_b still reaches side_a
    B_TO_A = "b_to_a"


def resolve(target: Target, selectors: list[str]) -> list[str]:
    """Member names (or CLIENTS) the selectors name now; ActionFailed if one names none."""
    names = REGISTRY.names()
    out: list[str] = []
    for sel in selectors:
        service, _, role = sel.partition(":")
        if sel == CLIENTS:
            found = [CLIENTS]
        elif service in names and role:
            roles = live_roles(target, service)
            found = [m for m, r in roles.items() if role in r.split("+")]
        elif sel in names:
            found = [m.name for m in target.members(sel)]
        else:
            found = [m.name for s in names for m in target.members(s) if m.name == sel]
        if not found:
            raise ActionFailed(f"network selector {sel!r} names no member now")
        out += [f for f in found if f not in out]
    return out


def _cuts(ctx: RunContext) -> NetworkCuts:
    if not isinstance(ctx.target, CutsNetwork):
        raise ActionFailed(f"the {ctx.target.name} target cannot cut its network yet"
                           " (on kind, kind.isolate_member cuts one pod off)")
    cuts = ctx.target.network_cuts()
    if (why := cuts.problem()) is not None:
        raise ActionFailed(why)
    return cuts


def _pairs(a: list[str], b: list[str], direction: Direction) -> list[tuple[str, str]]:
    overlap = sorted(set(a) & set(b))
    if overlap:
        raise ActionFailed(f"{', '.join(overlap)} on both sides of the network fault")
    ab = [(x, y) for x in a for y in b if not (x == CLIENTS and y == CLIENTS)]
    ba = [(y, x) for x, y in ab]
    return {Direction.BOTH: ab + ba, Direction.A_TO_B: ab, Direction.B_TO_A: ba}[direction]


def _inject(ctx: RunContext, side_a: list[str], side_b: list[str], direction: Direction,
            how: Drop, duration: float | None) -> FaultResult:
    cuts = _cuts(ctx)
    direction = Direction(direction)  # called directly (tests), a plain string
    a, b = resolve(ctx.target, side_a), resolve(ctx.target, side_b)
    pairs = _pairs(a, b, direction)
    tag = f"drill-{uuid.uuid4().hex[:8]}"
    ctx.will_undo("network.heal", tag=tag)
    rules = cuts.apply(tag, pairs, how)
    if duration:
        # Lifted by itself after `duration`; the journaled undo still runs at rollback.
        timer = threading.Timer(duration, cuts.remove, args=(tag,))
        timer.daemon = True
        timer.start()
    arrow = {Direction.BOTH: "<->", Direction.A_TO_B: "->", Direction.B_TO_A: "<-"}[direction]
    return FaultResult(
        summary=f"{how.describe()}: {', '.join(a)} {arrow} {', '.join(b)}"
        + (f" for {duration:g}s" if duration else ""),
        members=[m for m in a + b if m != CLIENTS],
        detail={"tag": tag, "side_a": a, "side_b": b, "direction": direction.value,
                "rules": rules})


@fault("network.partition", undo="network.heal")
def partition(ctx: RunContext, side_a: list[str], side_b: list[str],
              direction: Direction = Direction.BOTH,
              duration: Duration | None = None) -> FaultResult:
    """Cut the network between two groups of members (or `clients`), both ways or one
    way only, until undone or for `duration`. Existing connections are cut too."""
    return _inject(ctx, side_a, side_b, direction, Drop(), duration)


@fault("network.loss", undo="network.heal")
def loss(ctx: RunContext, side_a: list[str], side_b: list[str], percent: int,
         direction: Direction = Direction.BOTH,
         duration: Duration | None = None) -> FaultResult:
    """Drop `percent` of the packets between two groups, at random."""
    if not 0 < percent < 100:
        raise ActionFailed(f"percent must be between 1 and 99 (100 is network.partition), "
                           f"not {percent}")
    return _inject(ctx, side_a, side_b, direction, Drop(percent=percent), duration)


@fault("network.bandwidth", undo="network.heal")
def bandwidth(ctx: RunContext, side_a: list[str], side_b: list[str], kbytes_per_second: int,
              direction: Direction = Direction.BOTH,
              duration: Duration | None = None) -> FaultResult:
    """Drop what goes beyond `kbytes_per_second` between two groups (a policer: TCP backs
    off to the rate)."""
    if kbytes_per_second < 1:
        raise ActionFailed(f"kbytes_per_second must be at least 1, not {kbytes_per_second}")
    return _inject(ctx, side_a, side_b, direction,
                   Drop(bytes_per_second=kbytes_per_second * 1024), duration)


@action("network.heal")
def heal(ctx: RunContext, tag: str | None = None) -> FaultResult:
    """Lift the network fault tagged `tag` (its undo), or, without a tag, every network
    fault in force (a scenario's step: "heal the partition 30 s later"). Idempotent."""
    removed = _cuts(ctx).remove(tag)
    what = tag or "every network fault"
    return FaultResult(summary=f"lifted {removed} rule(s) of {what}" if removed
                       else f"{what}: nothing in force")

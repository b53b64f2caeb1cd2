"""Read-only observations of the NATS cluster, asked of the servers themselves."""

from __future__ import annotations

from drillrunner.core.actions import probe
from drillrunner.engine.context import RunContext
from drillrunner.services.nats.ops import nats_ops
from drillrunner.services.nats.topology import readiness


@probe("nats.ready")
def ready(ctx: RunContext) -> bool:
    """Every node answers /healthz ok, the nodes agree on a JetStream meta leader, and
    the drill stream has a leader and all its configured replicas current."""
    return readiness(ctx.target, nats_ops(ctx.target)).ready


@probe("nats.stream_peers_current")
def stream_peers_current(ctx: RunContext) -> int:
    """How many nodes hold a current copy of the drill stream (leader + current
    followers): how many node losses the acknowledged messages survive, plus one."""
    return readiness(ctx.target, nats_ops(ctx.target)).current_peers


@probe("nats.stream_replicas")
def stream_replicas(ctx: RunContext) -> int:
    """The drill stream's configured replica count (R), as the stream reports it."""
    r = readiness(ctx.target, nats_ops(ctx.target))
    if r.configured_replicas is None:
        raise RuntimeError("; ".join(r.problems) or "no stream info")
    return r.configured_replicas

"""Read-only observations of the Kafka quorum."""

from __future__ import annotations

from drillrunner.core.actions import probe
from drillrunner.engine.context import RunContext
from drillrunner.services.kafka import client
from drillrunner.services.kafka.ops import kafka_ops
from drillrunner.services.kafka.topology import (
    active_controller,
    live_bootstrap,
    partition_state,
    readiness,
)


@probe("kafka.ready")
def ready(ctx: RunContext) -> bool:
    """Every broker registered and unfenced, the KRaft quorum led, and the drill partition
    led with all 3 replicas in its ISR."""
    r = readiness(ctx.target, kafka_ops(ctx.target))
    if not r.ready:
        ctx.record("kafka.not_ready", problems=r.problems)
    return r.ready


@probe("kafka.in_sync_replicas")
def in_sync_replicas(ctx: RunContext) -> int:
    """How many replicas of the drill partition are in its ISR (0 if it has no metadata)."""
    state = partition_state(ctx.target, kafka_ops(ctx.target))
    return len(state.isr) if state is not None else 0


@probe("kafka.min_insync_replicas")
def min_insync_replicas(ctx: RunContext) -> int:
    """The drill topic's min.insync.replicas as the brokers report it."""
    ops = kafka_ops(ctx.target)
    found = client.topic_config(live_bootstrap(ctx.target, ops), ops.topic,
                                ["min.insync.replicas"])
    return int(found["min.insync.replicas"])


@probe("kafka.controller")
def controller(ctx: RunContext) -> str:
    """The active KRaft controller's member name ("none" during an election)."""
    found = active_controller(ctx.target, kafka_ops(ctx.target))
    return found.name if found is not None else "none"

"""Kubernetes-level faults and their undos, registered by name (kind target only).

Each fault journals its undo (name + JSON arguments) with ctx.will_undo BEFORE it acts;
every undo is idempotent. For the catalog to see them, this module must be listed in
services/registry.py GENERIC_ACTIONS ("drillrunner.targets.kind.faults").
"""

from __future__ import annotations

from drillrunner.core.actions import action, fault
from drillrunner.core.errors import ActionFailed
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext
from drillrunner.targets.kind.target import KindTarget


def _kind(ctx: RunContext) -> KindTarget:
    if not isinstance(ctx.target, KindTarget):
        raise ActionFailed(f"this fault needs the kind target (running on {ctx.target.name})")
    return ctx.target


@fault("kind.isolate_member", undo="kind.rejoin_member")
def isolate_member(ctx: RunContext, service: str, member: str) -> FaultResult:
    """Cut one pod off the network with a deny-all NetworkPolicy. Undo: delete it."""
    target = _kind(ctx)
    ref = target.member(service, member)
    ctx.will_undo("kind.rejoin_member", service=service, member=member)
    target.pause(ref)
    return FaultResult(summary=f"isolated {member} (NetworkPolicy)", members=[member])


@action("kind.rejoin_member")
def rejoin_member(ctx: RunContext, service: str, member: str) -> FaultResult:
    """Delete the member's isolation NetworkPolicy (idempotent)."""
    target = _kind(ctx)
    target.resume(target.member(service, member))
    return FaultResult(summary=f"{member} rejoined the network", members=[member])


@fault("kind.stop_node", undo="kind.start_node")
def stop_node(ctx: RunContext, service: str, member: str) -> FaultResult:
    """`docker stop` the kind node running `member` (every pod on it goes with it).
    Undo: start the node container again."""
    target = _kind(ctx)
    node = target.node_of(target.member(service, member))
    ctx.will_undo("kind.start_node", node=node)
    target.stop_node(node)
    return FaultResult(summary=f"stopped node {node} (ran {member})", members=[member],
                       detail={"node": node})


@fault("kind.pause_node", undo="kind.start_node")
def pause_node(ctx: RunContext, service: str, member: str) -> FaultResult:
    """`docker pause` the kind node running `member`: its pods freeze. Undo: unpause."""
    target = _kind(ctx)
    node = target.node_of(target.member(service, member))
    ctx.will_undo("kind.start_node", node=node)
    target.pause_node(node)
    return FaultResult(summary=f"paused node {node} (ran {member})", members=[member],
                       detail={"node": node})


@action("kind.start_node")
def start_node(ctx: RunContext, node: str) -> FaultResult:
    """Start (or unpause) a node container; does nothing to a running one."""
    _kind(ctx).start_node(node)
    return FaultResult(summary=f"node {node} running", detail={"node": node})


@fault("kind.set_config", undo="kind.restore_config", disrupts=0)
def set_config(ctx: RunContext, configmap: str, key: str, value: str) -> FaultResult:
    """Change one ConfigMap key. Undo: put back the value it had (or remove the key)."""
    target = _kind(ctx)
    current = target.read_config(configmap)
    if current is None:
        raise ActionFailed(f"no ConfigMap {configmap}")
    ctx.will_undo("kind.restore_config", configmap=configmap, key=key,
                  previous=current.get(key))
    target.set_config(configmap, key, value)
    return FaultResult(summary=f"set {configmap}.{key}", detail={"configmap": configmap,
                                                                 "key": key})


@action("kind.restore_config")
def restore_config(ctx: RunContext, configmap: str, key: str,
                   previous: str | None = None) -> FaultResult:
    """Restore one ConfigMap key to `previous` (None: remove it); idempotent."""
    _kind(ctx).restore_config(configmap, key, previous)
    return FaultResult(summary=f"restored {configmap}.{key}")

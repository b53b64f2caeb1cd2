"""Faults on Feast's state. Each journals its undo before it changes anything."""

from __future__ import annotations

import time

from drillrunner.core.actions import fault
from drillrunner.core.errors import StackError
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext
from drillrunner.services.feast.ops import feast_ops
from drillrunner.services.feast.restore import STASH_BACKUP

STASH_FLUSH = "feast.flush"


@fault("feast.flush_online_store", undo="feast.rematerialize")
def flush_online_store(ctx: RunContext) -> FaultResult:
    """FLUSHDB of Feast's Redis database on the current master (the replica follows): the
    online store loses every feature value while the server keeps running. Undo: a full
    materialisation."""
    ops = feast_ops(ctx.target)
    ctx.will_undo("feast.rematerialize", mode="full", via="server")
    invoked = time.monotonic()
    keys = ops.flush_online_store()
    ctx.stash[STASH_FLUSH] = {"invoked": invoked, "keys": keys}
    return FaultResult(summary=f"flushed Feast's online store ({keys} keys)",
                       detail={"keys_removed": keys, "keys_after": ops.online_store_keys()})


@fault("feast.destroy_registry", undo="feast.recover_registry")
def destroy_registry(ctx: RunContext, restart_server: bool = True,
                     timeout: Duration = 90.0) -> FaultResult:
    """Drop the SQL registry (its whole schema). With `restart_server` the feature server
    is then restarted, as after a node restart: a running server would go on serving
    from its cached registry and hide the loss. Undo: restore the scenario's registry
    backup if the registry is still gone, else re-create it with `feast apply`."""
    ops = feast_ops(ctx.target)
    backup = (ctx.stash.get(STASH_BACKUP) or {}).get("path")
    ctx.will_undo("feast.recover_registry", backup=backup)
    ops.destroy_registry()
    detail: dict[str, object] = {"registry_present": ops.registry_present()}
    if restart_server:
        ops.stop_server()
        try:
            ops.start_server(timeout)
            detail["server_restarted"] = "running (with an empty or missing registry)"
        except StackError as exc:
            detail["server_restarted"] = f"failed to start: {str(exc)[-400:]}"
    return FaultResult(summary="dropped the Feast SQL registry"
                       + (" and restarted feast-0" if restart_server else ""),
                       members=[ops.server().name] if restart_server else [], detail=detail)

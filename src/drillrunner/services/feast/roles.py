"""The feature server's live state, as its process and its /health endpoint show it."""

from __future__ import annotations

from enum import StrEnum

from drillrunner.services.feast import http
from drillrunner.services.feast.ops import SERVICE, feast_ops
from drillrunner.services.paused import is_stopped
from drillrunner.targets.base import Target


class Role(StrEnum):
    SERVING = "serving"  # /health answers 200 (which says little: see feast.health)
    UNHEALTHY = "unhealthy"  # /health answers something else
    UNRESPONSIVE = "unresponsive"  # running, but /health does not answer
    PAUSED = "paused"
    DOWN = "down"


def member_roles(target: Target) -> dict[str, str]:
    ops = feast_ops(target)
    out = {}
    for m in target.members(SERVICE):
        pid = target.pid(m)  # None: not running here, or a target without PIDs (kind)
        if pid is None and not target.is_running(m):
            role = Role.DOWN
        elif is_stopped(target, m):
            role = Role.PAUSED
        elif m.name != ops.server().name:
            role = Role.SERVING  # another Feast process (kind's registry server), Ready
        else:
            status = http.health(ops.base_url(), timeout=1.0)
            role = (Role.UNRESPONSIVE if status is None
                    else Role.SERVING if status == 200 else Role.UNHEALTHY)
        out[m.name] = role.value
    return out

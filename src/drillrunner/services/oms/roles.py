"""Live state of the OMS members, asked of the processes and their HTTP API."""

from __future__ import annotations

from enum import StrEnum

from drillrunner.services.oms.http import get
from drillrunner.services.oms.ops import SERVICE, oms_ops
from drillrunner.services.paused import is_stopped
from drillrunner.targets.base import Target


class Role(StrEnum):
    READY = "ready"
    NOT_READY = "not-ready"  # alive, a dependency (or its breaker) is down
    UNRESPONSIVE = "unresponsive"
    PAUSED = "paused"
    DOWN = "down"


def member_roles(target: Target) -> dict[str, str]:
    ops = oms_ops(target)
    roles = {}
    for m in target.members(SERVICE):
        pid = target.pid(m)  # None: no process here, or a target without PIDs (kind)
        if is_stopped(target, m):
            role = Role.PAUSED
        else:
            status = get(f"{ops.url(m.name)}/readyz").status
            if pid is None and status is None:
                role = Role.DOWN
            else:
                role = {200: Role.READY, 503: Role.NOT_READY}.get(status or 0,
                                                                  Role.UNRESPONSIVE)
        roles[m.name] = role.value
    return roles

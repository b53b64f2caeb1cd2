"""Whether a member is paused, the same way for every service driver.

Locally a pause is SIGSTOP of the member's process (seen in /proc); on kind it is the
target's network isolation of the pod (the processes run on another host).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from drillrunner.targets.base import MemberRef


class Processes(Protocol):
    """Where members' processes are seen: any Target, or a local deployment itself
    (which must judge readiness before a target object exists)."""

    def pid(self, member: MemberRef) -> int | None: ...

    def is_running(self, member: MemberRef) -> bool: ...


@runtime_checkable
class Isolates(Protocol):
    """A target whose pause cuts the member off the network instead of SIGSTOPping a
    process it cannot see (kind: a NetworkPolicy per pod)."""

    def is_isolated(self, member: MemberRef) -> bool: ...


def proc_state(pid: int) -> str | None:
    """The one-letter state of a local process (T = stopped), None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()[0]


def is_stopped(target: Processes, member: MemberRef) -> bool:
    """True if the member is paused: its process frozen by SIGSTOP (where the target has a
    PID), else isolated by the target's pause (kind), so that resume undoes it."""
    pid = target.pid(member)
    if pid is not None:
        return proc_state(pid) == "T"
    return isinstance(target, Isolates) and target.is_isolated(member)

"""Whether a member is paused, the same way for every service driver.

Locally a pause is SIGSTOP of the member's process (its state, read by the supervisor's
process_state, the one reader of /proc); on kind it is the target's network isolation of
the pod (the processes run on another host). No driver judges a pause any other way.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from drillrunner.core.waiting import poll_until
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import process_state


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


def is_stopped(target: Processes, member: MemberRef) -> bool:
    """True if the member is paused: its process frozen by SIGSTOP (where the target has a
    PID), else isolated by the target's pause (kind), so that resume undoes it."""
    pid = target.pid(member)
    if pid is not None:
        return process_state(pid) == "T"
    return isinstance(target, Isolates) and target.is_isolated(member)


def wait_stopped(target: Processes, member: MemberRef, timeout: float = 5.0) -> None:
    """After a pause: a SIGSTOP lands asynchronously, so wait to see it land (where the
    target has a PID; kind's isolation is in place once pause() returns)."""
    if target.pid(member) is not None:
        poll_until(lambda: is_stopped(target, member), timeout=timeout, interval=0.01,
                   what=f"{member.name} to stop")

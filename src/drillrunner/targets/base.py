"""The small capability protocols every target implements.

Service drivers are written against these, so `redis.kill_primary` works on any target.
Roles are never stored here: drivers discover them from the servers themselves.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict


class Signal(StrEnum):
    KILL = "KILL"
    TERM = "TERM"


class MemberRef(BaseModel):
    """One process (local) or pod (kind) of a service, as the target addresses it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str
    name: str
    host: str
    port: int
    kind: str = "server"  # e.g. "server", "sentinel": what the member is, not its role


@runtime_checkable
class Target(Protocol):
    """What the engine and service drivers may ask of any target."""

    name: str

    def members(self, service: str) -> list[MemberRef]: ...

    def deployment(self, service: str) -> object:
        """The service's adapter on this target (services/<svc>/local.py or kind.py): the
        operations its driver's own protocol names (e.g. services/redis/ops.py), such as
        wiping data or restoring a backup. Drivers narrow it with isinstance."""

    def member(self, service: str, name: str) -> MemberRef: ...

    def pid(self, member: MemberRef) -> int | None: ...

    def is_running(self, member: MemberRef) -> bool: ...

    def kill(self, member: MemberRef, signal: Signal = Signal.KILL) -> None:
        """Kill the member (its whole process group) and wait until it is gone."""

    def pause(self, member: MemberRef) -> None:
        """Freeze the member (SIGSTOP of its process group locally)."""

    def resume(self, member: MemberRef) -> None: ...

    def pause_process(self, member: MemberRef, pid: int) -> None:
        """Freeze one process of a member (e.g. PostgreSQL's walreceiver)."""

    def resume_process(self, member: MemberRef, pid: int) -> None: ...

    def start(self, member: MemberRef) -> None:
        """Start a stopped or killed member again; returns once its port accepts connections."""

    def log_tail(self, member: MemberRef, lines: int = 50) -> str: ...

    def member_config(self, member: MemberRef) -> dict[str, str]:
        """The configuration the member runs with, by file name, for the evidence."""

    def artifacts_dir(self) -> Path:
        """A folder the target may use for backups and restored members."""

    def describe(self) -> dict[str, str]:
        """Facts for the evidence (target name, host, state folder, context...)."""

"""What the TimescaleDB driver needs from a target beyond the generic Target protocol.

The local target's PostgresDeployment implements it; a kind target can implement the same
operations with pods and `kubectl exec`. Members are named as in `target.members()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from drillrunner.core.errors import ActionFailed
from drillrunner.targets.base import MemberRef, Signal, Target

SERVICE = "timescaledb"


@runtime_checkable
class PostgresOps(Protocol):
    def dsn(self, member: str, timeout: float = 2.0) -> str:
        """libpq connection string of one member (no password ever logged)."""

    def cluster_dsn(self, timeout: float = 1.0) -> str:
        """Multi-host connection string that always reaches the current primary."""

    def is_paused(self, member: str) -> bool:
        """True while the member's processes are frozen (SIGSTOP / docker pause)."""

    # Process faults on every process of a member. PostgreSQL's children leave the
    # postmaster's process group (setsid), so the generic Target calls, which signal a
    # process group, would reach the postmaster alone on the local target.

    def kill(self, member: str, sig: Signal = Signal.KILL) -> None:
        """KILL every process at once, or stop gracefully (TERM); wait until none is left."""

    def pause(self, member: str) -> None: ...

    def resume(self, member: str) -> None: ...

    def pause_process(self, member: str, pid: int) -> None:
        """Freeze one server process of the member (e.g. its walreceiver)."""

    def resume_process(self, member: str, pid: int) -> None:
        """Resume it; a PID that is no longer the member's is left alone."""

    def start_member(self, member: str) -> None:
        """Start a stopped member on its existing data; returns once it accepts queries."""

    def synchronous_wanted(self) -> bool:
        """Whether the stack's settings ask for synchronous replication."""

    def set_synchronous(self, member: str, enabled: bool) -> None:
        """Set synchronous_standby_names on `member` (to its peers, or to '') and reload."""

    def rebuild_replica(self, member: str, primary: str) -> None:
        """Stop and wipe `member`, clone it from `primary` as a streaming standby, start it
        and return once the primary sees it streaming."""

    def base_backup(self, source: str, dest: Path) -> Path:
        """A plain-format base backup of `source` (WAL included) in the empty folder `dest`."""

    def pitr_member(self) -> MemberRef:
        """The temporary member a point-in-time restore starts."""

    def restore_pitr(self, backup: Path, target_time: str) -> MemberRef:
        """Start the PITR member from `backup`, replaying archived WAL up to `target_time`
        and then promoting. Returns once it runs (recovery may still be going on)."""

    def remove_member(self, member: str) -> bool:
        """Stop and delete a temporary member; False if there was nothing to remove."""

    def timescaledb_installed(self) -> bool: ...


@runtime_checkable
class RoutesPrimary(Protocol):
    """Targets whose clients reach the primary through something the target must repoint
    after a promotion (kind: the Service timescaledb-primary). Local clients use a
    multi-host connection string and need nothing."""

    def route_primary(self, member: str) -> None: ...


@runtime_checkable
class StagesRestore(Protocol):
    """Targets where putting the base backup where a restore member can read it is a
    transfer of drill's own (kind: copied into a new pod through the API, in chunks), done
    before the restore is timed. Locally that copy is a plain file copy and part of it."""

    def stage_restore(self, backup: Path, target_time: str) -> None: ...


def pg_ops(target: Target) -> PostgresOps:
    """The target's PostgreSQL-specific operations."""
    factory = getattr(target, "deployment", None)
    ops = factory(SERVICE) if callable(factory) else None
    if not isinstance(ops, PostgresOps):
        raise ActionFailed(f"target {target.name!r} offers no PostgreSQL operations")
    return ops

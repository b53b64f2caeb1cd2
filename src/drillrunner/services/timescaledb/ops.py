"""What the TimescaleDB driver needs from a target beyond the generic Target protocol.

The local target's PostgresDeployment implements it; a kind target can implement the same
operations with pods and `kubectl exec`. Members are named as in `target.members()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from drillrunner.core.errors import ActionFailed
from drillrunner.services.timescaledb.pgbackrest import (
    BackupEntry,
    BackupType,
    Outcome,
    VerifyReport,
)
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

    def patroni_roles(self) -> dict[str, str]:
        """member -> primary | replica | down | paused, as the HA manager (Patroni) says."""

    def cluster_state(self) -> list[dict[str, object]]:
        """Patroni's view of the cluster (its /cluster members), for the evidence."""

    def switchover(self, candidate: str | None = None, timeout: float = 60.0) -> str:
        """A planned switchover by Patroni to `candidate` (any replica if None); returns
        the new leader once Patroni reports it done."""

    def rebuild_replica(self, member: str, primary: str) -> None:
        """Have the HA manager reinitialize `member` from `primary` (wipe and clone) and
        return once the primary sees it streaming."""

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
class BacksUpWithPgBackRest(Protocol):
    """Targets whose WAL is archived by pgBackRest (stanza `drill`): full and incremental
    backups of the current primary, `pgbackrest verify`, restores to a point in time into
    the PITR member. A separate protocol so a target without it keeps PostgresOps."""

    def backup_repo(self) -> Path:
        """The repository's folder (backups under backup/<stanza>/<label>/)."""

    def ensure_stanza(self) -> None:
        """Write pgBackRest's configuration and create the stanza (idempotent)."""

    def pgbackrest_check(self) -> Outcome:
        """`pgbackrest check`: WAL from the primary reaches the repository."""

    def pgbackrest_backup(self, kind: BackupType) -> tuple[BackupEntry, float]:
        """A backup of the primary now; its `pgbackrest info` entry and seconds taken."""

    def pgbackrest_info(self) -> tuple[str, list[BackupEntry]]: ...

    def pgbackrest_verify(self) -> VerifyReport: ...

    def pgbackrest_restore(self, target_time: str, label: str | None = None) -> MemberRef:
        """Restore into the PITR member up to `target_time`, then promote; returns once it
        runs (recovery may still be going on)."""

    # Repository files, named relative to the stanza's backup folder (`<label>/pg_data/...`,
    # as `pgbackrest verify` names them), wherever the repository lives.

    def backup_files(self, label: str) -> dict[str, int]:
        """The data files (under pg_data/base) of backup `label` -> their sizes in bytes."""

    def read_backup_bytes(self, file: str, offset: int, length: int) -> bytes | None:
        """Up to `length` bytes at `offset` of a repository file; None if it is gone."""

    def write_backup_bytes(self, file: str, offset: int, data: bytes) -> None:
        """Overwrite bytes in place at `offset` (the file keeps its name and size)."""


@runtime_checkable
class StagesRestore(Protocol):
    """Targets where putting the base backup where a restore member can read it is a
    transfer of drill's own (kind: copied into a new pod through the API, in chunks), done
    before the restore is timed. Locally that copy is a plain file copy and part of it."""

    def stage_restore(self, backup: Path, target_time: str) -> None: ...


@runtime_checkable
class PredictsFailover(Protocol):
    """Targets that know their HA manager's timings (the local Patroni settings): a
    failover fault reports the window they predict beside the RTO it will measure."""

    def predicted_failover(self) -> tuple[float, float]: ...


def pg_ops(target: Target) -> PostgresOps:
    """The target's PostgreSQL-specific operations."""
    factory = getattr(target, "deployment", None)
    ops = factory(SERVICE) if callable(factory) else None
    if not isinstance(ops, PostgresOps):
        raise ActionFailed(f"target {target.name!r} offers no PostgreSQL operations")
    return ops

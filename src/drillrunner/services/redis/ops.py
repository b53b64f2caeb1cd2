"""What the Redis driver needs from a target beyond the generic Target protocol.

The local target's RedisDeployment implements it with files on disk; a kind target can
implement it with `kubectl exec` / `cp` on the pods' volumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from drillrunner.core.errors import ActionFailed
from drillrunner.targets.base import MemberRef, Target


@runtime_checkable
class RedisOps(Protocol):
    master_name: str

    @property
    def appendonly(self) -> bool:
        """Whether the stack is meant to run with AOF on."""

    def servers(self) -> list[MemberRef]: ...

    def sentinels(self) -> list[MemberRef]: ...

    def current_master(self) -> MemberRef:
        """The primary as the sentinels (or, when none runs, the servers) know it."""

    def prepare_server(
        self, name: str, replica_of: MemberRef | None, *, appendonly: bool | None = None
    ) -> None:
        """Write the server's config so its next start is a primary (None) or a replica."""

    def prepare_sentinel(self, name: str, master: MemberRef, *, fresh: bool = False) -> None:
        """Write the sentinel's config monitoring `master`; `fresh` forgets learned state."""

    def has_data(self, name: str) -> bool: ...

    def wipe(self, name: str) -> None:
        """Delete a stopped member's data (server) or learned state (sentinel)."""

    def copy_out(self, name: str, dest: Path) -> list[str]:
        """Copy the server's dump.rdb and AOF directory into `dest`."""

    def copy_in(self, name: str, src: Path) -> None:
        """Put `src/dump.rdb` into a stopped server's data folder."""

    def hold(self, name: str) -> None:
        """Keep the member down once it is killed, until prepare_server/prepare_sentinel
        releases it, so wipe/copy_in act on a stopped member. Call it before the kill:
        on kind the controller recreates a deleted pod at once."""

    def member_for(self, host: str, port: int) -> MemberRef | None:
        """The member a server or sentinel names by `host`:`port` (e.g. the master a
        sentinel reports, a replica's master_host), or None if it is none of ours.
        Members are addressed differently from outside (kind: port-forwards)."""


def redis_ops(target: Target) -> RedisOps:
    ops = target.deployment("redis")
    if not isinstance(ops, RedisOps):
        raise ActionFailed(f"target {target.name} offers no Redis operations")
    return ops

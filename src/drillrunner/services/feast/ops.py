"""What the Feast driver needs from a target beyond the generic Target protocol.

The local target's FeastDeployment implements it with the `feast` CLI, psycopg and
redis-py; a kind target can implement the same with `kubectl exec` into the pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from drillrunner.core.errors import ActionFailed
from drillrunner.services.feast.canary import Truth
from drillrunner.targets.base import MemberRef, Target

SERVICE = "feast"


@dataclass(frozen=True)
class CliRun:
    """One `feast` CLI command: what ran (no secrets), how long, how it ended."""

    command: str
    seconds: float
    returncode: int
    output_tail: str


@runtime_checkable
class FeastOps(Protocol):
    def server(self) -> MemberRef:
        """The feature server member (feast-0)."""

    def base_url(self) -> str:
        """http://host:port of the feature server."""

    def offline_truth(self) -> Truth:
        """The newest offline row of every canary, read from the PostgreSQL primary."""

    def online_store_keys(self) -> int:
        """Keys in Feast's Redis database on the current Redis master."""

    def flush_online_store(self) -> int:
        """FLUSHDB of Feast's Redis database on the current master; keys removed."""

    def materialize_range(self) -> tuple[str, str]:
        """The full range (start, end) a full materialisation covers (ISO, UTC)."""

    def run_cli(self, *args: str, timeout: float = 180.0) -> CliRun:
        """Run `feast <args>` in the feature repository with the stack's config."""

    def registry_present(self) -> bool:
        """Whether the SQL registry holds the drill project's feature service."""

    def registry_objects(self) -> dict[str, list[str]]:
        """Names of the registry's objects by kind (a fingerprint to compare restores)."""

    def backup_registry(self, dest: Path) -> Path:
        """Dump the SQL registry (its schema, with data) into the file `dest`."""

    def destroy_registry(self) -> None:
        """Drop the SQL registry (its whole schema)."""

    def restore_registry(self, src: Path) -> None:
        """Replace the SQL registry with the dump `src`."""

    def start_server(self, timeout: float = 90.0) -> None:
        """Write the config for the current primaries and start feast serve if it is down;
        returns once its port accepts connections."""

    def stop_server(self) -> None: ...


def feast_ops(target: Target) -> FeastOps:
    ops = target.deployment(SERVICE)
    if not isinstance(ops, FeastOps):
        raise ActionFailed(f"target {target.name} offers no Feast operations")
    return ops

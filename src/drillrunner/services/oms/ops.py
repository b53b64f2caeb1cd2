"""What the OMS driver needs from a target beyond the generic Target protocol.

The local target's OmsDeployment implements it with config files and the supervisor; a
kind target would patch the Deployment's ConfigMap and wait for the rollout.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from drillrunner.core.errors import ActionFailed
from drillrunner.targets.base import MemberRef, Target

SERVICE = "oms"


@runtime_checkable
class OmsOps(Protocol):
    def members(self) -> list[MemberRef]: ...

    def url(self, member: str) -> str:
        """Base URL of the member's HTTP API."""

    def kill_switch_key(self) -> str:
        """The Redis key holding the kill-switch state."""

    def postgres_dsn(self) -> str:
        """Multi-host conninfo reaching the PostgreSQL primary (orders are read back)."""

    def start_member(self, member: str, overrides: dict[str, Any] | None = None,
                     timeout: float = 30.0) -> float:
        """Start the member with the stack's settings (changed by `overrides`, keys of
        the `oms` settings section) if it is not running; return seconds until its HTTP
        port answered (0.0 if it already ran). StackError if it exits or stays silent."""

    def stop_member(self, member: str) -> None:
        """Stop it gracefully (TERM); no-op when it is not running."""

    def running_overrides(self, member: str) -> dict[str, Any]:
        """The overrides the running member was started with ({} for the stack's own)."""


def oms_ops(target: Target) -> OmsOps:
    ops = target.deployment(SERVICE)
    if not isinstance(ops, OmsOps):
        raise ActionFailed(f"target {target.name} offers no OMS operations")
    return ops

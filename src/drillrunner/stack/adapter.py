"""What the local target needs from each service's local deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor


class LocalDeployment(Protocol):
    """One service laid out as processes: config files, data folders, start commands."""

    service: str

    def __init__(self, settings: StackSettings, state: Path, sup: Supervisor) -> None: ...

    def members(self) -> list[MemberRef]:
        """Every member of the standing topology (not temporary ones such as a PITR copy)."""

    def spec(self, name: str) -> ProcessSpec:
        """How to start member `name` (its config file already written)."""

    def check_binaries(self) -> None:
        """Raise MissingBinary, naming the package to install, when a server is absent."""

    def up(self) -> None:
        """Initialise what is missing, start every member, wait for real readiness
        (replica streaming, sentinels seeing each other). Idempotent."""

    def down(self) -> None:
        """Stop every member (temporary ones too); keep data."""

    def versions(self) -> dict[str, str]:
        """Server versions as the binaries report them, for the evidence."""

"""Network faults as every target offers them: who may send to whom, and how badly.

A cut names its two ends by member name, or CLIENTS for everything that is not a member
of the stack (the workload, drill's own probes). How a target enforces it is its own
business (targets/local/netcut.py on the local target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

CLIENTS = "clients"


@dataclass(frozen=True)
class Drop:
    """What a cut does to the packets it matches: all dropped, `percent` dropped at
    random, or those beyond `bytes_per_second` dropped (a policer, not a shaper)."""

    percent: int = 100
    bytes_per_second: int | None = None

    def describe(self) -> str:
        if self.bytes_per_second is not None:
            return f"limited to {self.bytes_per_second} B/s"
        return "cut" if self.percent >= 100 else f"{self.percent}% lost"


class NetworkCuts(Protocol):
    def problem(self) -> str | None:
        """Why this target cannot cut its network here (one line), or None."""

    def apply(self, tag: str, pairs: list[tuple[str, str]], how: Drop) -> list[str]:
        """Apply `how` to packets from each pair's sender to its receiver; returns the
        rules as the target shows them."""

    def remove(self, tag: str | None) -> int:
        """Undo the cut tagged `tag`, or every cut (None); idempotent; returns how many
        rules went."""

    def active(self) -> list[str]:
        """The rules in force, each described."""


@runtime_checkable
class CutsNetwork(Protocol):
    """A target that can cut its members' network (the local target)."""

    def network_cuts(self) -> NetworkCuts: ...

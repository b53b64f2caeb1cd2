"""Capabilities of a target whose members are pods, as small typed protocols.

The kind adapters of the services (services/<svc>/kind.py) are written against these, not
against the concrete KindTarget, so a service can be added without touching targets/.
`KindPods` is their intersection: everything a kind adapter may use.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict

from drillrunner.targets.base import MemberRef, Signal, Target

if TYPE_CHECKING:
    from drillrunner.targets.kind.apis import KubeApis
    from drillrunner.targets.kind.forward import PortForwarder


class ExecResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    returncode: int
    stdout: str
    stderr: str


class PodInfo(BaseModel):
    """What adapters need to know of one pod, read from the API at one moment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    uid: str
    phase: str | None = None
    ready: bool = False  # Running and Ready, and not being deleted
    deleting: bool = False  # a deletion timestamp is set
    containers_running: bool = False  # every regular container has started and runs
    node: str | None = None
    ip: str | None = None
    image: str = ""  # the first container's image
    crashed_exit_code: int | None = None  # of a container that exited (or waits after it)


class HoldState(StrEnum):
    """A member's hold file and its server process (see targets/kind/hold.py)."""

    HELD = "held"  # hold file set, no server process: the pod waits
    HOLDING = "holding"  # hold file set, the server still runs (its kill is to come)
    FREE = "free"  # no hold file


class PodExec(Protocol):
    def exec(self, member: MemberRef, argv: Sequence[str], *, timeout: float = 60.0,
             container: str | None = None, stdin: str | None = None) -> ExecResult: ...

    def sh(self, member: MemberRef, script: str, *, timeout: float = 60.0,
           what: str | None = None) -> str: ...


class PodFiles(Protocol):
    def read_file(self, member: MemberRef, path: str, *, timeout: float = 120.0) -> bytes: ...

    def write_file(self, member: MemberRef, path: str, data: bytes, *,
                   chunk: int = 48 * 1024, timeout: float = 120.0) -> None: ...


class PodLifecycle(Protocol):
    def pod(self, name: str) -> PodInfo | None: ...

    def pods(self, service: str) -> list[PodInfo]: ...

    def pod_exists(self, name: str) -> bool: ...

    def pod_ready(self, name: str) -> bool: ...

    def is_running(self, member: MemberRef) -> bool: ...

    def kill(self, member: MemberRef, signal: Signal = Signal.KILL, *,
             hold: bool = True) -> None: ...

    def start(self, member: MemberRef, timeout: float = 300.0) -> None: ...

    def hold(self, member: MemberRef, *, wait: float = 0.0) -> None: ...

    def release(self, member: MemberRef) -> None: ...

    def hold_path(self, member: MemberRef) -> str: ...

    def hold_state(self, member: MemberRef, servers: Sequence[str]) -> HoldState | None: ...

    def log_tail(self, member: MemberRef, lines: int = 50) -> str: ...


class ConfigMaps(Protocol):
    def read_config(self, configmap: str) -> dict[str, str] | None: ...

    def set_config(self, configmap: str, key: str, value: str) -> str | None: ...

    def restore_config(self, configmap: str, key: str, previous: str | None) -> None: ...


class Secrets(Protocol):
    def secret_value(self, name: str, key: str) -> str: ...


class Workloads(Protocol):
    def scale(self, statefulset: str, replicas: int) -> int: ...


class KindPods(PodExec, PodFiles, PodLifecycle, ConfigMaps, Secrets, Workloads, Target,
               Protocol):
    """Everything a service's kind adapter may ask of the kind target."""

    namespace: str
    state: Path

    @property
    def apis(self) -> KubeApis: ...

    def selector(self, service: str | None = None) -> str:
        """The label selector of the stack's objects (of one service)."""

    def forwarder(self) -> PortForwarder | None:
        """The target's port-forwards (None: members are addressed in-cluster)."""

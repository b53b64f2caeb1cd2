"""What a service is, in one declaration: its folder's `spec.py` holds a `ServiceSpec`.

Everything that used to be listed by hand in several places (the catalog's modules, the
local ports, start order, stack settings, the adapters of each target, audit rules) is read
from the specs in `services/registry.py`. Names of modules are given as text and imported
when first needed, so listing the services stays cheap (`drill --help` imports no client).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from drillrunner.targets.base import Target


class ServiceSettings(BaseModel):
    """A service's knobs in the local stack's settings (`drill stack up --set <svc>.<key>=...`):
    the production-like default and, by changing one, a broken variant a drill must catch."""

    model_config = ConfigDict(extra="forbid")
    service: ClassVar[str]


@dataclass(frozen=True)
class ServiceSpec:
    """One service of the stack.

    `ports` maps each local port name (a member, or a member's second listener such as
    `kafka-0-controller`) to its offset from the stack's port base. `actions` names the
    submodules whose registered probes, faults, workloads, checks and actions make up the
    service's part of the catalog. `local` and `kind` name each target's adapter as
    "submodule:Class"; `audit` the submodule of the audit rules the service owns.
    """

    name: str
    summary: str
    ports: Mapping[str, int]
    actions: tuple[str, ...]
    local: str
    kind: str | None = None
    settings: type[ServiceSettings] | None = None
    depends_on: tuple[str, ...] = ()
    audit: str | None = None
    roles: str = "member_roles"  # the package's function: live role of every member
    package: str = field(default="")

    def __post_init__(self) -> None:
        if not self.package:
            object.__setattr__(self, "package", f"drillrunner.services.{self.name}")
        if self.settings is not None and self.settings.service != self.name:
            raise ValueError(f"{self.name}: its settings model names {self.settings.service}")

    def module(self, sub: str) -> str:
        return f"{self.package}.{sub}"

    def action_modules(self) -> list[str]:
        return [self.module(m) for m in self.actions]

    def adapter(self, target: str) -> str | None:
        """"module:Class" of the adapter for `target` ("local" or "kind"), if it has one."""
        ref = self.local if target == "local" else self.kind if target == "kind" else None
        return None if ref is None else self.module(ref)

    def member_roles(self, target: Target) -> dict[str, str]:
        fn: Callable[[Target], dict[str, str]] = getattr(
            importlib.import_module(self.package), self.roles)
        return fn(target)


def load_ref(ref: str) -> Any:
    """The object a "package.module:Name" reference names, imported now."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)

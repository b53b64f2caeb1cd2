"""The one list of the stack's services. Adding a service is its folder and one line here.

Everything else that needs "every service" (the action catalog, local ports and start
order, the stack settings, each target's adapters, the audit rules, `drill stack status`)
derives it from `SERVICES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from drillrunner.core.actions import Catalog
from drillrunner.services.etcd.spec import SPEC as ETCD
from drillrunner.services.feast.spec import SPEC as FEAST
from drillrunner.services.kafka.spec import SPEC as KAFKA
from drillrunner.services.nats.spec import SPEC as NATS
from drillrunner.services.oms.spec import SPEC as OMS
from drillrunner.services.redis.spec import SPEC as REDIS
from drillrunner.services.spec import ServiceSpec
from drillrunner.services.timescaledb.spec import SPEC as TIMESCALEDB
from drillrunner.targets.base import Target

SERVICES: tuple[ServiceSpec, ...] = (TIMESCALEDB, REDIS, OMS, NATS, FEAST, KAFKA, ETCD)

# Registered actions that belong to no service: the engine's generic checks and the faults
# only the kind target offers (nodes, network policies).
GENERIC_ACTIONS = ("drillrunner.engine.checks", "drillrunner.targets.kind.faults",
                   "drillrunner.services.network_faults")


class Registry:
    """A set of services, checked for consistency when built (tests build their own)."""

    def __init__(self, services: Iterable[ServiceSpec]) -> None:
        self.services = tuple(services)
        names = [s.name for s in self.services]
        if len(set(names)) != len(names):
            raise ValueError(f"services registered twice: {names}")
        offsets: dict[int, str] = {}
        for spec in self.services:
            for dep in spec.depends_on:
                if dep not in names:
                    raise ValueError(f"{spec.name} depends on unknown service {dep}")
            for port, offset in spec.ports.items():
                if offset in offsets:
                    raise ValueError(f"port offset {offset} of {port} is {offsets[offset]}'s too")
                offsets[offset] = port
        self._ports = {port: off for s in self.services for port, off in s.ports.items()}

    def names(self) -> list[str]:
        return [s.name for s in self.services]

    def get(self, name: str) -> ServiceSpec:
        for spec in self.services:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def port(self, name: str) -> int:
        """The offset of a local port by name (a member, or a member's second listener)."""
        return self._ports[name]

    def port_offsets(self) -> dict[str, int]:
        return dict(self._ports)

    def action_modules(self) -> list[str]:
        return [m for s in self.services for m in s.action_modules()] + list(GENERIC_ACTIONS)

    def adapters(self, target: str) -> dict[str, str]:
        """service -> "module:Class" of its adapter on `target` ("local" or "kind")."""
        out = {}
        for spec in self.services:
            ref = spec.adapter(target)
            if ref is not None:
                out[spec.name] = ref
        return out

    def depends_on(self) -> dict[str, tuple[str, ...]]:
        return {s.name: s.depends_on for s in self.services if s.depends_on}

    def audit_modules(self) -> list[str]:
        return [s.module(s.audit) for s in self.services if s.audit]

    def start_waves(self, wanted: Sequence[str] | None = None) -> list[list[str]]:
        """Services in waves: each wave needs only services of earlier waves."""
        todo = [n for n in self.names() if wanted is None or n in wanted]
        deps = self.depends_on()
        done: set[str] = set()
        waves = []
        while todo:
            wave = [n for n in todo if all(d in done or d not in todo
                                           for d in deps.get(n, ()))]
            if not wave:
                raise ValueError(f"services depend on each other in a cycle: {todo}")
            waves.append(wave)
            done.update(wave)
            todo = [n for n in todo if n not in done]
        return waves


REGISTRY = Registry(SERVICES)


def full_catalog() -> Catalog:
    """Every registered action of every service, plus the generic ones."""
    return Catalog.load(REGISTRY.action_modules())


def live_roles(target: Target, service: str) -> dict[str, str]:
    """Every member's live role as its service reads it from the servers; a member whose
    role cannot be read (the reader failed) is "unknown (<error>)", never guessed."""
    try:
        return REGISTRY.get(service).member_roles(target)
    except Exception as exc:
        return {m.name: f"unknown ({type(exc).__name__})" for m in target.members(service)}

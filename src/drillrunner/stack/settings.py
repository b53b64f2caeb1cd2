"""Settings of the local stack: ports and the knobs drills compare (sync vs async, AOF)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from drillrunner.core.errors import StackError, UsageError
from drillrunner.services.registry import REGISTRY, Registry
from drillrunner.services.spec import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


class _StackSettings(BaseModel):
    """The local stack's settings: a port base (each member's port is the base plus its
    service's offset, so one number moves the whole stack) and, per service that has
    knobs, a section named after it (`redis.appendonly`). The sections come from the
    registry: the real model, `StackSettings`, is built from it below."""

    model_config = ConfigDict(extra="forbid")

    registry: ClassVar[Registry] = REGISTRY
    port_base: int = Field(default=17000, ge=1024, le=65000)

    def of(self, model: type[S]) -> S:
        """A service's section, typed: `settings.of(RedisSettings).appendonly`."""
        section = getattr(self, model.service)
        if not isinstance(section, model):
            raise TypeError(f"settings section {model.service} is no {model.__name__}")
        return section

    def port(self, member: str) -> int:
        return self.port_base + self.registry.port(member)

    def with_overrides(self, assignments: list[str]) -> Self:
        """Apply `--set section.key=value` assignments (values parsed as JSON, else text)."""
        data = self.model_dump()
        for item in assignments:
            key, sep, raw = item.partition("=")
            if not sep:
                raise UsageError(f"--set {item!r}: expected KEY=VALUE, e.g. redis.appendonly=false")
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
            node = data
            *parents, leaf = key.split(".")
            for p in parents:
                if not isinstance(node.get(p), dict):
                    raise UsageError(f"--set {item!r}: unknown setting {key!r}")
                node = node[p]
            if leaf not in node:
                raise UsageError(f"--set {item!r}: unknown setting {key!r}")
            node[leaf] = value
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise UsageError(f"--set: {where}: {err['msg']}") from None


def settings_model(registry: Registry) -> type[_StackSettings]:
    """The settings model of a registry's stack: one section per service with settings."""
    sections: dict[str, Any] = {s.name: (s.settings, Field(default_factory=s.settings))
                                for s in registry.services if s.settings is not None}
    model = create_model("StackSettings", __base__=_StackSettings, **sections)
    model.registry = registry
    return model


if TYPE_CHECKING:
    StackSettings = _StackSettings
else:
    StackSettings = settings_model(REGISTRY)


def settings_file(state: Path) -> Path:
    return state / "stack.json"


def load_settings(state: Path) -> StackSettings | None:
    path = settings_file(state)
    if not path.exists():
        return None
    try:
        return StackSettings.model_validate_json(path.read_text())
    except ValidationError as exc:
        raise StackError(f"{path}: unreadable stack settings ({exc.error_count()} errors); "
                         "run 'drill stack down' and 'drill stack up'") from None


def save_settings(state: Path, settings: StackSettings) -> None:
    path = settings_file(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(settings.model_dump_json(indent=2))

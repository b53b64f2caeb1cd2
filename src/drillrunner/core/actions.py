"""Probes, faults, workloads, checks and rollback actions: typed functions registered by name.

The decorators only mark a function; `Catalog` collects the marked functions of the
modules it is given (services/registry.py names them: `full_catalog()`). A parameter
model is derived from each signature, so a scenario's
arguments are validated before anything runs.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from types import ModuleType
from typing import Any, Literal, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model

F = TypeVar("F", bound=Callable[..., Any])

MARK = "__drill_action__"
ALL = "all"  # a fault that disrupts every member of its tier at once
Disrupts = int | Literal["all"]

class ActionKind(StrEnum):
    PROBE = "probe"
    FAULT = "fault"
    WORKLOAD = "workload"
    CHECK = "check"
    ACTION = "action"  # rollbacks, backups, undos: changes that are not faults


@dataclass(frozen=True)
class ActionSpec:
    name: str
    kind: ActionKind
    fn: Callable[..., Any]
    params: type[BaseModel]
    undo: str | None
    doc: str
    disrupts: Disrupts = 0  # members a fault makes unavailable or wrong (blast radius)

    def bind(self, args: dict[str, Any]) -> BaseModel:
        """Validate scenario arguments against the function's signature."""
        return self.params.model_validate(args)

    def call(self, ctx: Any, bound: BaseModel) -> Any:
        return self.fn(ctx, **{k: getattr(bound, k) for k in type(bound).model_fields})


def _mark(kind: ActionKind, name: str, undo: str | None = None, disrupts: Disrupts = 0
          ) -> Callable[[F], F]:
    def deco(fn: F) -> F:
        setattr(fn, MARK, (kind, name, undo, disrupts))
        return fn

    return deco


def probe(name: str) -> Callable[[F], F]:
    return _mark(ActionKind.PROBE, name)


def fault(name: str, *, undo: str, disrupts: Disrupts = 1) -> Callable[[F], F]:
    """A fault must name the action that undoes it; it journals the undo's arguments
    with `ctx.will_undo(...)` before it changes anything. `disrupts` is how many members
    it takes out at once ("all" for a whole tier), checked against a scenario's
    blast_radius by `drill validate`."""
    if disrupts != ALL and not (isinstance(disrupts, int) and disrupts >= 0):
        raise ValueError(f"fault {name}: disrupts must be a count >= 0 or 'all'")
    return _mark(ActionKind.FAULT, name, undo, disrupts)


def workload(name: str) -> Callable[[F], F]:
    return _mark(ActionKind.WORKLOAD, name)


def check(name: str) -> Callable[[F], F]:
    return _mark(ActionKind.CHECK, name)


def action(name: str) -> Callable[[F], F]:
    return _mark(ActionKind.ACTION, name)


def _params_model(name: str, fn: Callable[..., Any]) -> type[BaseModel]:
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for i, (pname, param) in enumerate(inspect.signature(fn).parameters.items()):
        if i == 0:
            continue  # the context
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (hints.get(pname, Any), default)
    model: type[BaseModel] = create_model(
        f"Params[{name}]", __config__=ConfigDict(extra="forbid", frozen=True), **fields
    )
    return model


class Catalog:
    """Every registered action, by name."""

    def __init__(self, specs: Iterable[ActionSpec]) -> None:
        self._specs: dict[str, ActionSpec] = {}
        for spec in specs:
            if spec.name in self._specs:
                raise ValueError(f"action {spec.name} is registered twice")
            self._specs[spec.name] = spec
        for spec in self._specs.values():
            if spec.undo and spec.undo not in self._specs:
                raise ValueError(f"fault {spec.name} names an unknown undo {spec.undo}")

    @classmethod
    def from_modules(cls, modules: Iterable[ModuleType]) -> Catalog:
        specs = []
        for module in modules:
            for obj in vars(module).values():
                mark = getattr(obj, MARK, None)
                # Only functions defined here: an imported one belongs to its own module.
                if mark and callable(obj) and obj.__module__ == module.__name__:
                    kind, name, undo, disrupts = mark
                    doc = inspect.getdoc(obj) or ""
                    specs.append(ActionSpec(name, kind, obj, _params_model(name, obj), undo,
                                            doc, disrupts))
        return cls(specs)

    @classmethod
    def load(cls, module_names: Iterable[str]) -> Catalog:
        """Collect the named modules and, for packages, every submodule in them."""
        modules: list[ModuleType] = []
        for name in module_names:
            module = importlib.import_module(name)
            modules.append(module)
            for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
                modules.append(importlib.import_module(f"{name}.{info.name}"))
        return cls.from_modules(modules)

    def get(self, name: str) -> ActionSpec | None:
        return self._specs.get(name)

    def names(self, kind: ActionKind | None = None) -> list[str]:
        return sorted(n for n, s in self._specs.items() if kind is None or s.kind == kind)

    def __iter__(self) -> Any:
        return iter(self._specs.values())

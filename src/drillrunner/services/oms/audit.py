"""The order service's audit rules: its kill-switch and circuit breakers (C11) and its
simulation guard (C06), read from the manifests that configure it (ConfigMaps, env)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from drillrunner.audit.k8s import (
    FALSE,
    TRUE,
    config_data,
    containers,
    data_line,
    items,
    leaves,
    mapping,
    parsed,
    word,
    workloads,
)
from drillrunner.audit.model import Problem, Resource, line_of
from drillrunner.audit.registry import rule

_KILL = re.compile(r"kill.?switch", re.I)
_BREAKER = re.compile(r"breaker", re.I)
_SWITCH_STATE_KEYS = {"default", "state", "default_state", "kill_switch_default",
                      "killswitch_default"}


def _toggle_problems(where: str, key: str, value: Any, kill: bool) -> Iterator[str]:
    k, v = key.lower().replace("-", "_"), word(value)
    if kill and k in _SWITCH_STATE_KEYS and v not in TRUE:
        yield f"{where}: kill-switch default is {value!r}, not engaged"
    elif k.endswith("fail_closed") and v in FALSE:
        yield f"{where}: fail_closed is false: an unreadable switch lets orders through"
    elif k.endswith("enabled") and v in FALSE:
        what = "kill-switch" if kill else "circuit breaker"
        yield f"{where}: {what} disabled ({key}: {value})"


@rule("kill-switch-breakers", claims=["C11-kill-switch-breakers"])
def kill_switch_breakers(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Kill-switch ConfigMaps default to engaged (fail closed); circuit breakers enabled."""
    for res in resources:
        if res.kind == "ConfigMap" and (_KILL.search(res.name) or _BREAKER.search(res.name)):
            kill = bool(_KILL.search(res.name))
            for key, text in config_data(res).items():
                doc = parsed(text)
                pairs = (list(leaves(doc)) if isinstance(doc, dict | list)
                         else [(key, key, text, None)])
                for path, k, v, inner in pairs:
                    for msg in _toggle_problems(f"{key}:{path}" if path != key else key, k, v,
                                                kill):
                        yield Problem(res, msg, line=data_line(res, key, inner))
    for res, spec in workloads(resources):
        for c, _ in containers(spec):
            for env in items(c.get("env")):
                name, value = str(mapping(env).get("name", "")), mapping(env).get("value")
                if value is None:
                    continue
                line = line_of(env, "value")
                if _KILL.search(name):
                    key = "default" if name.upper().endswith(("DEFAULT", "STATE")) else name
                    for msg in _toggle_problems(f"env {name}", key, value, True):
                        yield Problem(res, msg, c.get("name"), line)
                elif _BREAKER.search(name):
                    for msg in _toggle_problems(f"env {name}", name, value, False):
                        yield Problem(res, msg, c.get("name"), line)


_ENV_KEY = re.compile(r"(^|_)(ENV|ENVIRONMENT)$", re.I)
_SIM_KEY = re.compile(r"SIMULATION(_MODE|_ENABLED)?$|(^|_)SIMULATE$", re.I)
_GUARD_KEY = re.compile(r"SIMULATION_?GUARD", re.I)
_PRODUCTION = {"production", "prod"}


Locate = Callable[[str, int | None], int | None]  # (key, line in its value) -> line


def _entry_line(lines: dict[str, int | None], key: str, _inner: int | None) -> int | None:
    return lines.get(key)


def _settings(values: dict[str, Any], locate: Locate
              ) -> tuple[dict[str, Any], dict[str, int | None]]:
    """Flattened settings (env, ConfigMap keys and YAML values in them), keys normalized,
    and the line of each."""
    flat: dict[str, Any] = {}
    lines: dict[str, int | None] = {}
    for key, value in values.items():
        doc = parsed(value) if isinstance(value, str) else None
        if isinstance(doc, dict):
            for _, k, v, inner in leaves(doc):
                norm = k.upper().replace("-", "_")
                flat[norm], lines[norm] = v, locate(key, inner)
        norm = key.upper().replace("-", "_")
        flat[norm], lines[norm] = value, locate(key, None)
    return flat, lines


def _simulation_problems(settings: dict[str, Any], production: bool
                         ) -> Iterator[tuple[str, str]]:
    """(setting, message) for each setting that is wrong in production."""
    production = production or any(_ENV_KEY.search(k) and word(v) in _PRODUCTION
                                   for k, v in settings.items())
    if not production:
        return
    for k, v in settings.items():
        if _SIM_KEY.search(k) and word(v) in TRUE:
            yield k, f"simulation mode on ({k}={v}) in a production environment"
        elif _GUARD_KEY.search(k) and word(v) in FALSE:
            yield k, f"simulation guard off ({k}={v}) in a production environment"


@rule("simulation-off-in-production", claims=["C06-simulation-guard"])
def simulation_off_in_production(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Simulation mode off (and its guard on) wherever the environment is production."""
    owners = {(r.namespace, r.name): r for r in resources if r.kind == "ConfigMap"}
    configmaps = {key: config_data(r) for key, r in owners.items()}
    prod_ns = {r.name for r in resources if r.kind == "Namespace" and any(
        word(mapping(mapping(r.body.get("metadata")).get("labels")).get(k)) in _PRODUCTION
        for k in ("environment", "env"))}
    for (ns, name), res in owners.items():
        settings, lines = _settings(configmaps[ns, name], partial(data_line, res))
        for k, msg in _simulation_problems(settings, ns in prod_ns):
            yield Problem(res, msg, line=lines[k])
    for res, spec in workloads(resources):
        for c, _ in containers(spec):
            values: dict[str, Any] = {}
            where: dict[str, int | None] = {}  # the env entry, or the envFrom that loads it
            for src in items(c.get("envFrom")):
                ref = mapping(mapping(src).get("configMapRef")).get("name")
                loaded = configmaps.get((res.namespace, str(ref)), {})
                values.update(loaded)
                where.update(dict.fromkeys(loaded, line_of(src)))
            for e in items(c.get("env")):
                if mapping(e).get("value") is not None:
                    name = str(mapping(e).get("name"))
                    values[name], where[name] = mapping(e).get("value"), line_of(e, "value")
            settings, lines = _settings(values, partial(_entry_line, where))
            for k, msg in _simulation_problems(settings, res.namespace in prod_ns):
                yield Problem(res, msg, c.get("name"), lines[k])

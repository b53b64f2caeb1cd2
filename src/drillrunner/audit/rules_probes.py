"""Dependency-aware probes (C12): a service that needs a database or cache is Ready only
while it can reach it, and is never restarted because it cannot.

A container depends on a store when it is one of this repository's images that does (the
order service, Feast) or when its env, envFrom-loaded ConfigMaps or args name one (a store
URL, a DSN, `PGHOST`, `REDIS_HOST`...). Stores themselves (Redis, PostgreSQL...) are not
judged on readiness: probing themselves is what they should do. Probes this rule cannot
read (gRPC, an exec script of unknown effect, an unconventional HTTP path) pass: it reports
only what is plainly wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from drillrunner.audit.k8s import (
    LONG_RUNNING,
    config_data,
    containers,
    items,
    mapping,
    workloads,
)
from drillrunner.audit.model import Problem, Resource, line_of
from drillrunner.audit.registry import rule

# Images of this repository whose server reads a store; the order service documents
# /readyz (Redis and PostgreSQL checked) and /livez (the process only).
_REPO_IMAGES = {"drillrunner/oms": "/readyz", "drillrunner/feast": None}
_STORE_IMAGE = re.compile(
    r"^(redis|redis-sentinel|valkey|keydb|postgres|postgresql|postgresql-repmgr|timescaledb"
    r"[\w.-]*|pgvector|postgis|mysql|mariadb|mongo|mongodb|memcached|etcd)$", re.I)
_STORE_URL = re.compile(r"\b(postgres|postgresql|redis|rediss|mysql|mariadb|mongodb"
                        r"(\+srv)?|memcached)://|\bjdbc:(postgresql|mysql|mariadb):", re.I)
_STORE_ENV = re.compile(
    r"(^|_)(DSN|DATABASE_URL|PGHOST)$|(^|_)(DB|DATABASE|PG|POSTGRES|POSTGRESQL|MYSQL|MONGO"
    r"|MONGODB|REDIS|MEMCACHED?|CACHE)_(URL|URI|DSN|HOST|ADDR|ADDRESS|SERVER|SERVERS)$", re.I)
# Paths conventionally reserved for one kind of probe (the last segments, lower case).
_READY_PATH = re.compile(r"(^|/)(readyz|ready|readiness)(?=[/\s'\"?]|$)")
_LIVE_PATH = re.compile(r"(^|/)(livez|live|liveness|alive|ping)(?=[/\s'\"?]|$)")
_STORE_CLIENT = re.compile(r"\b(pg_isready|psql|redis-cli|mysqladmin|mysql|mongosh|mongo)\b")
_HOST_FLAG = re.compile(r"(?:^|\s)(?:-h|--host)(?:=|\s+)['\"]?([^\s'\";]+)")
_LOCAL = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "[::1]"}


def _image_name(image: Any) -> str:
    """`registry:5000/org/name:tag@sha256:...` -> `org/name`, lower case."""
    ref = str(image or "").split("@", 1)[0].lower()
    path = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    parts = path.split("/")
    if len(parts) > 2 or (len(parts) == 2 and ("." in parts[0] or ":" in parts[0])):
        parts = parts[1:]
    return "/".join(parts)


def _store(c: dict[str, Any]) -> bool:
    return bool(_STORE_IMAGE.match(_image_name(c.get("image")).rsplit("/", 1)[-1]))


def _settings(c: dict[str, Any], configmaps: dict[str, dict[str, str]]
              ) -> Iterator[tuple[str, str]]:
    """(name, value) of the container's env (values None for references), of the
    ConfigMaps it loads with envFrom, and its args."""
    for env in items(c.get("env")):
        value = mapping(env).get("value")
        yield str(mapping(env).get("name", "")), "" if value is None else str(value)
    for src in items(c.get("envFrom")):
        ref = mapping(mapping(src).get("configMapRef")).get("name")
        yield from configmaps.get(str(ref), {}).items()
    for arg in (*items(c.get("command")), *items(c.get("args"))):
        yield "", str(arg)


def _dependency(c: dict[str, Any], configmaps: dict[str, dict[str, str]]) -> str | None:
    """What store the container reads (a short description), None when none is seen."""
    name = _image_name(c.get("image"))
    if name in _REPO_IMAGES:
        return f"its stores ({name} reads Redis and PostgreSQL)"
    if _store(c):
        return None
    for key, value in _settings(c, configmaps):
        if _STORE_ENV.search(key) or _STORE_URL.search(value):
            return f"the store it reads ({key or 'args'})"
    return None


def _http_path(probe: dict[str, Any]) -> str | None:
    path = mapping(probe.get("httpGet")).get("path")
    return None if path is None else str(path).split("?", 1)[0].rstrip("/").lower() or "/"


def _exec_text(probe: dict[str, Any]) -> str:
    return " ".join(str(a) for a in items(mapping(probe.get("exec")).get("command")))


def _remote_host(text: str) -> str | None:
    """The host a store client in an exec probe is pointed at, when it is not the pod."""
    if not _STORE_CLIENT.search(text):
        return None
    for m in _HOST_FLAG.finditer(text):
        host = m.group(1)
        if host.lower() not in _LOCAL and "$" not in host:
            return host
    return None


def _readiness(c: dict[str, Any], probe: dict[str, Any], dependency: str
               ) -> Iterator[tuple[int | None, str]]:
    wanted = _REPO_IMAGES.get(_image_name(c.get("image")))
    path = _http_path(probe)
    if "tcpSocket" in probe:
        yield (line_of(probe, "tcpSocket"), "readinessProbe is a bare tcpSocket check: the "
               f"pod stays Ready while {dependency} is down")
    elif path is not None and (_LIVE_PATH.search(path) or (wanted and path != wanted)):
        where = line_of(probe.get("httpGet"), "path") or line_of(probe, "httpGet")
        better = wanted or "a dependency-aware endpoint (/readyz)"
        yield where, (f"readinessProbe checks {path}, which does not reflect {dependency}; "
                      f"use {better}")
    elif "exec" in probe and _LIVE_PATH.search(_exec_text(probe).lower()):
        yield (line_of(probe, "exec"), "readinessProbe runs a liveness check, which does not "
               f"reflect {dependency}")


def _liveness(probe: dict[str, Any], dependent: bool) -> Iterator[tuple[int | None, str]]:
    """A liveness probe pointed at another host's store (any container), or at a readiness
    endpoint (a container that reads stores)."""
    path = _http_path(probe)
    text = _exec_text(probe)
    if dependent and path is not None and _READY_PATH.search(path):
        yield (line_of(probe.get("httpGet"), "path") or line_of(probe, "httpGet"),
               f"livenessProbe checks {path}, a readiness endpoint: an outage of a dependency "
               "would restart every pod; use the process-only endpoint (/livez)")
    elif text and ((host := _remote_host(text))
                   or (dependent and _READY_PATH.search(text.lower()))):
        what = f"a store at {host}" if host else "a readiness endpoint"
        yield (line_of(probe, "exec"), f"livenessProbe checks {what}: an outage of a "
               "dependency would restart every pod; check the process only")


@rule("dependency-aware-probes", claims=["C12-dependency-health"])
def dependency_aware_probes(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Readiness reflects the stores a service reads; liveness never depends on them."""
    configmaps = {(r.namespace, r.name): config_data(r) for r in resources
                  if r.kind == "ConfigMap"}
    for res, spec in workloads(resources):
        if res.kind not in LONG_RUNNING:
            continue
        loaded = {name: data for (ns, name), data in configmaps.items() if ns == res.namespace}
        for c, _ in containers(spec, init=False):
            dependency = _dependency(c, loaded)
            for line, message in _liveness(mapping(c.get("livenessProbe")),
                                           dependency is not None):
                yield Problem(res, message, c.get("name"), line)
            ready = mapping(c.get("readinessProbe"))
            if dependency is not None and ready:
                for line, message in _readiness(c, ready, dependency):
                    yield Problem(res, message, c.get("name"), line)

"""Which server runs in a container, and where it keeps its data.

Each service that knows its server's config (services/<svc>/audit.py) defines
`server(c: Container) -> Server | None`; `server_of` asks them in the registry's order.
The data-on-pvc, backup and disruption-budget rules build on the answer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from drillrunner.audit.resolve import Container, Value


@dataclass(frozen=True)
class DataDir:
    """A directory the server writes its data into, and the setting that names it (None:
    the server's or the image's default)."""

    path: str
    what: str  # e.g. "Redis dir", "PGDATA"
    setting: Value | None = None


@dataclass(frozen=True)
class Server:
    """A recognised server: `store` names a store whose backups the review promises (C08)
    ("PostgreSQL", "Redis"), `quorum` marks members that vote (Raft, Sentinel)."""

    service: str
    label: str
    dirs: list[DataDir] = field(default_factory=list)
    store: str | None = None
    quorum: bool = False


Detector = Callable[[Container], "Server | None"]


@cache
def detectors() -> tuple[Detector, ...]:
    from drillrunner.services.registry import REGISTRY

    found = []
    for name in REGISTRY.audit_modules():
        fn = getattr(importlib.import_module(name), "server", None)
        if callable(fn):
            found.append(fn)
    return tuple(found)


def server_of(c: Container) -> Server | None:
    for detect in detectors():
        found = detect(c)
        if found is not None:
            return found
    return None


def image_name(image: str) -> str:
    """The repository of an image reference without registry, tag or digest, lowercased:
    `docker.io/bitnami/redis:7.2@sha256:...` -> `bitnami/redis`."""
    ref = image.split("@", 1)[0].lower()
    parts = ref.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    last = parts[-1].split(":", 1)[0]
    name = "/".join([*parts[:-1], last])
    return name.removeprefix("library/")


def image_base(image: str) -> str:
    """The last component of the repository: `bitnami/redis` -> `redis`."""
    return image_name(image).rsplit("/", 1)[-1]


def program(word: str) -> str:
    """The basename of an argv word: `/usr/local/bin/redis-server` -> `redis-server`."""
    return word.rsplit("/", 1)[-1]

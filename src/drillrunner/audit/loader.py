"""Reads manifests from files, folders (recursively: *.yaml, *.yml, *.json) and `-` (stdin).

Multi-document YAML and `kind: List` are expanded. Documents that are not Kubernetes objects
(kustomization.yaml, kustomize patches, plain config files) are skipped, not errors. Input
that cannot be read or parsed raises AuditInputError naming the file and the reason.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from drillrunner.audit.model import Resource
from drillrunner.errors import DrillError, ExitCode

SUFFIXES = (".yaml", ".yml", ".json")
# Kustomize's own files: configuration of the build, not objects sent to the cluster.
NOT_RESOURCES = {"Kustomization", "Component"}
# Tool configuration, not cluster objects: kustomize's and kind's own files.
NOT_RESOURCE_GROUPS = ("kustomize.config.k8s.io/", "kind.x-k8s.io/")

try:  # libyaml's loader is ~10x faster; the pure-Python one is the fallback
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


class AuditInputError(DrillError):
    """A manifest could not be read or parsed: exit 2, with the file and the reason."""

    exit_code = ExitCode.USAGE


def load_paths(paths: Sequence[str]) -> list[Resource]:
    resources: list[Resource] = []
    for raw in paths:
        if raw == "-":
            resources += parse(sys.stdin.read(), "-")
            continue
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
            for f in files:
                resources += parse(_read(f), str(f))
        elif path.exists():
            resources += parse(_read(path), raw)
        else:
            raise AuditInputError(f"{raw}: no such file or folder")
    return resources


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AuditInputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                              ) from None
    except OSError as exc:
        raise AuditInputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def parse(text: str, source: str) -> list[Resource]:
    try:
        docs = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AuditInputError(f"{source}{where}: not valid YAML ({reason})") from None
    return [r for i, doc in enumerate(docs) for r in _objects(doc, f"{source}#{i}")]


def _objects(doc: Any, source: str) -> Iterator[Resource]:
    if not isinstance(doc, dict):
        return  # empty documents, scalars, lists of patches: not objects
    kind, api = doc.get("kind"), doc.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api, str) or kind in NOT_RESOURCES:
        return
    if api.startswith(NOT_RESOURCE_GROUPS):
        return
    if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
        for j, item in enumerate(doc.get("items") or []):
            yield from _objects(item, f"{source}[{j}]")
        return
    meta = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
    yield Resource(kind, str(meta.get("namespace") or ""), str(meta.get("name") or "?"), doc,
                   source)

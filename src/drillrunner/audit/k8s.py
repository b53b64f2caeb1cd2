"""Small accessors over raw manifests: pod specs, containers, labels, ConfigMap data, and
the lines they were read from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from drillrunner.audit.model import LineDict, Resource, line_of

# Controllers whose pods run until stopped: they need health probes. Jobs end by design.
LONG_RUNNING = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet",
                          "ReplicationController", "Pod"})
WORKLOADS = LONG_RUNNING | {"Job", "CronJob"}

TRUE = frozenset({"true", "1", "yes", "on", "enabled", "engaged"})
FALSE = frozenset({"false", "0", "no", "off", "disabled", "disengaged"})


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def pod_spec(res: Resource) -> dict[str, Any] | None:
    """The pod template's spec of a workload, None for other kinds."""
    if res.kind not in WORKLOADS:
        return None
    spec = mapping(res.body.get("spec"))
    if res.kind == "Pod":
        return spec
    if res.kind == "CronJob":
        spec = mapping(mapping(spec.get("jobTemplate")).get("spec"))
    return mapping(mapping(spec.get("template")).get("spec"))


def pod_labels(res: Resource) -> dict[str, Any]:
    spec = mapping(res.body.get("spec"))
    if res.kind == "CronJob":
        spec = mapping(mapping(spec.get("jobTemplate")).get("spec"))
    template = mapping(spec.get("template"))
    return {**mapping(mapping(res.body.get("metadata")).get("labels")),
            **mapping(mapping(template.get("metadata")).get("labels"))}


def containers(spec: dict[str, Any], *, init: bool = True) -> Iterator[tuple[dict[str, Any],
                                                                              bool]]:
    """(container, is_init) for every container of a pod spec."""
    for c in items(spec.get("containers")):
        if isinstance(c, dict):
            yield c, False
    if init:
        for c in items(spec.get("initContainers")):
            if isinstance(c, dict):
                yield c, True


def workloads(resources: Sequence[Resource]) -> Iterator[tuple[Resource, dict[str, Any]]]:
    for res in resources:
        spec = pod_spec(res)
        if spec is not None:
            yield res, spec


def config_data(res: Resource) -> dict[str, str]:
    return {str(k): str(v) for k, v in mapping(res.body.get("data")).items() if v is not None}


def data_line(res: Resource, key: str, inner: int | None = None) -> int | None:
    """Line of a ConfigMap data key or, given the 1-based line `inner` of its value, of that
    line when the value is a literal block (`key: |`)."""
    data = res.body.get("data")
    if inner is not None and isinstance(data, LineDict) and data.blocks and key in data.blocks:
        return data.blocks[key] + inner
    return line_of(data, key)


def parsed(text: str) -> Any:
    """A ConfigMap or env value parsed as YAML/JSON when it is one, else None; lines in it
    count from the value's first line. The loader refused the values that break its bounds."""
    from drillrunner.audit.loader import Refused, embedded

    try:
        return embedded(text)
    except Refused:  # not from loaded manifests: treated as text
        return None


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, str, Any, int | None]]:
    """(path, key, value, line) of every scalar in nested mappings and lists."""
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(v, dict | list):
                yield from leaves(v, sub)
            else:
                yield sub, str(k), v, line_of(value, k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")


def word(value: Any) -> str:
    return str(value).strip().lower()

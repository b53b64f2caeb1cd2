"""Where each server keeps its data, and whether that outlives the pod (the data-on-pvc rule
of audit/rules.py).

Known servers (services/<svc>/audit.py `server`) name their data directories from their own
config and defaults; each must be on a PersistentVolumeClaim, not on an emptyDir, a hostPath,
or the container's filesystem. Other workloads that look stateful
(by name, label or image) keep the former, conservative check: no emptyDir or hostPath
mounted where data goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from drillrunner.audit.k8s import containers, items, mapping, pod_labels
from drillrunner.audit.model import Problem, Resource, line_of
from drillrunner.audit.resolve import LOST, resolve
from drillrunner.audit.servers import server_of

_STATEFUL = re.compile(r"redis|feast|timescale|postgres|mongo|mysql|mariadb|elasticsearch"
                       r"|opensearch|etcd|zookeeper|rabbitmq|cassandra|minio|clickhouse"
                       r"|influxdb", re.I)
_DATA = re.compile(r"data|pgdata|registry|/var/lib/|aof|dump|store", re.I)


def _stateful_service(res: Resource, spec: dict[str, Any]) -> str | None:
    labels = pod_labels(res)
    for value in (labels.get("app.kubernetes.io/name"), labels.get("app"), res.name,
                  *(c.get("image") for c, _ in containers(spec))):
        if isinstance(value, str) and (m := _STATEFUL.search(value)):
            return m.group(0).lower()
    return None


def _fallback(res: Resource, spec: dict[str, Any]) -> Iterator[Problem]:
    service = _stateful_service(res, spec)
    if service is None:
        return
    mounts: dict[str, list[tuple[str, str]]] = {}
    for c, _ in containers(spec):
        for m in items(c.get("volumeMounts")):
            mounts.setdefault(str(mapping(m).get("name")), []).append(
                (str(c.get("name")), str(mapping(m).get("mountPath", ""))))
    for vol in items(spec.get("volumes")):
        vol = mapping(vol)
        kind = "emptyDir" if "emptyDir" in vol else "hostPath" if "hostPath" in vol else None
        name = str(vol.get("name"))
        if kind is None:
            continue
        for container, path in mounts.get(name, [(None, "")]):
            if _DATA.search(name) or _DATA.search(path):
                yield Problem(res, f"{service} data volume {name!r} "
                                   f"({path or 'not mounted'}) is an {kind}: lost with "
                                   "the pod; use a PersistentVolumeClaim "
                                   "(volumeClaimTemplates)", container,
                              line_of(vol, kind))


def data_problems(resources: Sequence[Resource]) -> Iterator[Problem]:
    known: set[str] = set()  # workloads with a recognised server
    flagged: set[tuple[str, str]] = set()  # (workload, volume): one finding each
    pods: dict[str, tuple[Resource, dict[str, Any]]] = {}
    for c in resolve(resources):
        pods.setdefault(c.res.ref, (c.res, c.spec))
        srv = server_of(c)
        if srv is None:
            continue
        known.add(c.res.ref)
        for d in srv.dirs:
            back = c.volume_for(d.path)
            if back.kind not in LOST or (c.res.ref, back.name) in flagged:
                continue
            flagged.add((c.res.ref, back.name))
            lost = "the container" if back.name == "" else "the pod"
            yield Problem(c.res, f"{srv.label} data ({d.what}: {d.path}) is on "
                                 f"{back.describe()}: lost with {lost}; use a "
                                 "PersistentVolumeClaim (volumeClaimTemplates)",
                          c.name, back.line)
    for ref, (res, spec) in pods.items():
        if ref not in known:
            yield from _fallback(res, spec)

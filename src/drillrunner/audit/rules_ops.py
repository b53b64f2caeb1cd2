"""Operational rules across workloads: backups of the stores (C08) and disruption budgets
that keep quorum (C01)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

from drillrunner.audit.k8s import items, mapping, pod_labels
from drillrunner.audit.model import Problem, Resource, line_of
from drillrunner.audit.registry import rule
from drillrunner.audit.resolve import Container, resolve
from drillrunner.audit.servers import Server, image_base, program, server_of

STORE_KINDS = frozenset({"StatefulSet", "Deployment", "ReplicaSet", "ReplicationController"})

# A CronJob backs up a store when it runs one of these (program -> store).
_TOOLS = {"pg_dump": "PostgreSQL", "pg_dumpall": "PostgreSQL", "pg_basebackup": "PostgreSQL",
          "pgbackrest": "PostgreSQL", "wal-g": "PostgreSQL", "barman-cloud-backup":
          "PostgreSQL", "redis-cli": "Redis", "redis-dump": "Redis", "redis-dump-go": "Redis"}
# Options naming where a tool writes its backup.
_OUTPUTS = ("-f", "--file", "-D", "--pgdata", "--rdb", "-o", "--output")
_OBJECT_STORE = re.compile(r"\b(s3|gs|gcs|az|azure|abfss?|wasbs?|swift|b2|minio|r2)://"
                           r"|\.blob\.core\.windows\.net|storage\.googleapis\.com", re.I)
_OBJECT_ENV = re.compile(r"^(WALG_(S3|GS|AZ)_PREFIX|PGBACKREST_REPO\d*_(S3|GCS|AZURE)_BUCKET"
                         r"|AWS_S3_BUCKET|S3_BUCKET|BUCKET)$")
# Operator and tool resources that back a namespace's stores up: (apiVersion group, kind,
# the stores they cover).
_OPERATORS = {("velero.io", "Schedule"): {"PostgreSQL", "Redis"},
              ("k8up.io", "Schedule"): {"PostgreSQL", "Redis"},
              ("postgresql.cnpg.io", "ScheduledBackup"): {"PostgreSQL"},
              ("postgres-operator.crunchydata.com", "PostgresCluster"): {"PostgreSQL"}}


def _redis_backup(words: list[str]) -> bool:
    """redis-cli --rdb, or BGSAVE (then a copy of the snapshot)."""
    return "--rdb" in words or any(w.lower() in ("bgsave", "save") for w in words)


def _stores_backed(c: Container) -> set[str]:
    words = c.words()
    progs = {program(w) for w in words}
    stores = {store for tool, store in _TOOLS.items() if tool in progs}
    if "Redis" in stores and not _redis_backup(words):
        stores.discard("Redis")  # redis-cli for something else
    return stores


def _outputs(c: Container) -> list[str]:
    """Absolute paths the backup is written to: tool options and shell redirections."""
    paths = [v.text for v in c.flags(*_OUTPUTS)]
    words = c.words()
    for i, w in enumerate(words):
        if w in (">", ">>") and i + 1 < len(words):
            paths.append(words[i + 1])
        elif w.startswith((">", ">>")) and len(w.lstrip(">")) > 0:
            paths.append(w.lstrip(">"))
    return [p for p in paths if p.startswith("/") and "$" not in p and p != "/dev/null"]


def _object_store(c: Container) -> bool:
    return any(_OBJECT_STORE.search(w) for w in c.words()) or any(
        _OBJECT_STORE.search(v.text) or _OBJECT_ENV.match(k) for k, v in c.env.items())


def _backup_problem(c: Container) -> Problem | None:
    """Why a backup CronJob's output does not outlive its pod, if it does not."""
    if _object_store(c):
        return None
    outputs = _outputs(c)
    if outputs:
        backs = [c.volume_for(p) for p in outputs]
        if any(b.durable for b in backs):
            return None
        lost = backs[0]
        return Problem(c.res, f"the backup ({outputs[0]}) is written to {lost.describe()}: "
                              "lost when the job's pod ends; write it to a "
                              "PersistentVolumeClaim or an object store", c.name, lost.line)
    mounts = [str(mapping(m).get("mountPath", "")) for m in items(c.body.get("volumeMounts"))]
    if any(c.volume_for(m).durable for m in mounts if m):
        return None
    return Problem(c.res, "the backup goes to no PersistentVolumeClaim and no object store: "
                          "it is lost when the job's pod ends", c.name, c.line)


def _operators(resources: Sequence[Resource]) -> dict[str, set[str]]:
    """namespace ("*": every one) -> stores an operator or tool resource backs up."""
    covered: dict[str, set[str]] = {}
    for res in resources:
        group = str(res.body.get("apiVersion", "")).split("/", 1)[0]
        stores = _OPERATORS.get((group, res.kind))
        if stores is None:
            continue
        spec = mapping(res.body.get("spec"))
        if res.kind == "PostgresCluster" and not mapping(spec.get("backups")):
            continue
        namespaces = items(mapping(spec.get("template")).get("includedNamespaces")) \
            if group == "velero.io" else [res.namespace]
        for ns in namespaces or ["*"]:
            covered.setdefault(str(ns), set()).update(stores)
    return covered


@rule("backups", claims=["C08-backup-restore"])
def backups(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Every PostgreSQL and Redis store has a backup CronJob (or operator schedule) whose
    output outlives its pod: a PersistentVolumeClaim or an object store."""
    covered = _operators(resources)
    stores: list[tuple[Resource, Server, str | None]] = []
    for c in resolve(resources):
        if c.res.kind == "CronJob":
            backed = _stores_backed(c)
            if backed:  # the store has its job; what is wrong is the job's output
                covered.setdefault(c.res.namespace, set()).update(backed)
                problem = _backup_problem(c)
                if problem is not None:
                    yield problem
            continue
        srv = server_of(c)
        if srv is not None and srv.store and c.res.kind in STORE_KINDS:
            stores.append((c.res, srv, c.name))
    for res, srv, name in stores:
        store = str(srv.store)
        if store not in covered.get(res.namespace, set()) | covered.get("*", set()):
            yield Problem(res, f"no backup of this {store} store: no CronJob in namespace "
                               f"{res.namespace or '-'} backs it up ({_hint(store)}) and no "
                               "backup operator schedules it", name)


def _hint(store: str) -> str:
    return {"PostgreSQL": "pg_dump, pg_basebackup, pgbackrest, wal-g",
            "Redis": "redis-cli --rdb, BGSAVE"}.get(store, "")


# Quorum-based servers no service module describes: by image.
_QUORUM_IMAGES = frozenset({"etcd", "zookeeper", "cp-zookeeper", "consul"})


def _quorum_member(c: Container) -> bool:
    srv = server_of(c)
    if srv is not None:
        return srv.quorum
    return image_base(c.image) in _QUORUM_IMAGES


def _selects(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    if not selector:
        return False  # a PDB with an empty selector selects nothing useful here
    for k, v in mapping(selector.get("matchLabels")).items():
        if str(labels.get(k)) != str(v):
            return False
    for e in items(selector.get("matchExpressions")):
        e = mapping(e)
        key, op, values = str(e.get("key")), e.get("operator"), [str(v) for v in
                                                                  items(e.get("values"))]
        has, value = key in labels, str(labels.get(key))
        if (op == "In" and not (has and value in values)) or \
                (op == "NotIn" and has and value in values) or \
                (op == "Exists" and not has) or (op == "DoesNotExist" and has):
            return False
    return True


def _count(value: Any, n: int) -> int | None:
    """An int-or-percent of n pods (rounded up, as the disruption controller does)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%") and text[:-1].isdigit():
        return math.ceil(n * int(text[:-1]) / 100)
    return int(text) if text.isdigit() else None


def _pdb_problem(pdb: Resource, n: int, majority: int) -> Problem | None:
    spec = mapping(pdb.body.get("spec"))
    tolerated = n - majority
    if "maxUnavailable" in spec:
        most = _count(spec["maxUnavailable"], n)
        if most is not None and most > tolerated:
            return Problem(pdb, f"maxUnavailable {spec['maxUnavailable']} of {n} members lets "
                                f"evictions take the quorum ({majority}) away; use "
                                f"{tolerated}", line=line_of(spec, "maxUnavailable"))
        return None
    least = _count(spec.get("minAvailable", 1), n)
    if least is not None and least < majority:
        return Problem(pdb, f"minAvailable {spec.get('minAvailable', 1)} of {n} members lets "
                            f"evictions take the quorum ({majority}) away; use {majority}",
                       line=line_of(spec, "minAvailable") or line_of(pdb.body, "spec"))
    return None


@rule("pdb-keeps-quorum", claims=["C01-ha-probes"])
def pdb_keeps_quorum(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Quorum-based StatefulSets (etcd, Kafka KRaft, NATS JetStream, Redis Sentinel) of 3 or
    more have a PodDisruptionBudget that never lets evictions break the majority."""
    pdbs = [r for r in resources if r.kind == "PodDisruptionBudget"]
    done: set[str] = set()
    for c in resolve(resources):
        if c.res.kind != "StatefulSet" or c.res.ref in done or not _quorum_member(c):
            continue
        done.add(c.res.ref)
        n = mapping(c.res.body.get("spec")).get("replicas", 1)
        if not isinstance(n, int) or n < 3:
            continue
        majority = n // 2 + 1
        labels = pod_labels(c.res)
        mine = [p for p in pdbs if p.namespace == c.res.namespace and _selects(
            mapping(mapping(p.body.get("spec")).get("selector")), labels)]
        if not mine:
            yield Problem(c.res, f"no PodDisruptionBudget selects these {n} quorum members: "
                                 "a node drain may evict a majority at once; add one with "
                                 f"maxUnavailable {n - majority}")
        for pdb in mine:
            problem = _pdb_problem(pdb, n, majority)
            if problem is not None:
                yield problem

"""Kafka's audit rule, read from each broker's effective configuration: server.properties
mounted from a ConfigMap, the images' `KAFKA_*` / `KAFKA_CFG_*` environment, and
`--override key=value` arguments, in that order of precedence (last wins), over Kafka's
defaults.

Replication (C13, C01): topics replicated 3 times, acknowledged writes on at least 2
replicas (and fewer than all, or one broker down stops producers), no unclean leader
election. Where the log lives (`log.dirs`) is the data-on-pvc rule's, via `server`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from drillrunner.audit.configs import properties
from drillrunner.audit.k8s import LONG_RUNNING, TRUE
from drillrunner.audit.model import Problem, Resource
from drillrunner.audit.registry import rule
from drillrunner.audit.resolve import ConfigFile, Container, Value, resolve
from drillrunner.audit.servers import DataDir, Server, image_base, image_name, program

_IMAGES = frozenset({"kafka", "cp-kafka", "cp-server"})
_DEFAULTS = {"min.insync.replicas": "1", "default.replication.factor": "1",
             "unclean.leader.election.enable": "false", "process.roles": ""}
# log.dirs when unset: Kafka's own default, or what each image's launcher writes.
_LOG_DIRS = {"apache/kafka": "/tmp/kraft-combined-logs", "confluentinc/cp-kafka":
             "/var/lib/kafka/data", "confluentinc/cp-server": "/var/lib/kafka/data",
             "bitnami/kafka": "/bitnami/kafka/data"}


@dataclass
class KafkaConfig:
    c: Container
    file: ConfigFile | None
    values: dict[str, Value] = field(default_factory=dict)

    def get(self, key: str) -> tuple[str, Value | None]:
        found = self.values.get(key)
        return (found.text, found) if found else (_DEFAULTS.get(key, ""), None)

    def where(self) -> tuple[Resource, int | None]:
        if self.file is not None:
            return self.file.res, self.file.line()
        return self.c.res, self.c.line


def _is_broker(c: Container) -> bool:
    words = [program(w) for w in c.words()]
    if any(w.startswith("kafka-server-start") for w in words):
        return True
    if image_base(c.image) not in _IMAGES or c.res.kind not in LONG_RUNNING:
        return False
    return not any(w.startswith("kafka-") and w.endswith(".sh") for w in words)


def _env_key(name: str) -> str | None:
    """server.properties key of a KAFKA_* variable (`_` is `.`, `__` is `_`, `___` is `-`)."""
    for prefix in ("KAFKA_CFG_", "KAFKA_"):
        if name.startswith(prefix):
            rest = name[len(prefix):].lower()
            return rest.replace("___", "\0").replace("__", "\1").replace("_", ".") \
                .replace("\0", "-").replace("\1", "_")
    return None


def _config(c: Container) -> KafkaConfig:
    words = c.words()
    start = next((i for i, w in enumerate(words)
                  if program(w).startswith("kafka-server-start")), None)
    path = words[start + 1] if start is not None and start + 1 < len(words) else None
    file = c.file(path) if path else next(
        (f for p, f in c.files.items() if p.endswith("/server.properties")), None)
    cfg = KafkaConfig(c, file)
    if file is not None:
        for key, s in properties(file.text).items():
            cfg.values[key] = Value(s.value, file.res, file.line(s.line))
    for name, env in sorted(c.env.items(), key=lambda kv: kv[0].startswith("KAFKA_CFG_")):
        env_key = _env_key(name)
        if env_key is not None:
            cfg.values[env_key] = env
    for v in c.flags("--override", after=("kafka-server-start.sh", "kafka-server-start")):
        key, _, text = v.text.partition("=")
        cfg.values[key] = Value(text, v.res, v.line)
    return cfg


def server(c: Container) -> Server | None:
    if not _is_broker(c):
        return None
    cfg = _config(c)
    dirs, at = cfg.get("log.dirs")
    if not dirs:
        dirs, at = cfg.get("log.dir")
    default = _LOG_DIRS.get(image_name(c.image), "/tmp/kafka-logs")
    paths = [d.strip() for d in dirs.split(",") if d.strip()] if dirs else [default]
    found = [DataDir(p, "Kafka log.dirs" if at else "Kafka log.dirs (default)", at)
             for p in paths]
    meta, at = cfg.get("metadata.log.dir")
    if meta:
        found.append(DataDir(meta, "KRaft metadata.log.dir", at))
    roles, _ = cfg.get("process.roles")
    return Server("kafka", "Kafka", found, quorum="controller" in roles)


def _int(text: str) -> int | None:
    try:  # the first word: a trailing comment is not Kafka's, but a reader's note
        return int((text.split() or [""])[0].strip('"'))
    except ValueError:
        return None


def _problems(cfg: KafkaConfig) -> Iterator[tuple[Value | None, str]]:
    rf_text, rf_at = cfg.get("default.replication.factor")
    isr_text, isr_at = cfg.get("min.insync.replicas")
    rf, isr = _int(rf_text), _int(isr_text)
    unset = " (unset: the default)"
    if rf is not None and rf < 3:
        yield rf_at, (f"default.replication.factor {rf}{unset if rf_at is None else ''}: "
                      "fewer than 3 copies of each partition; use 3")
    if isr is not None and isr < 2:
        yield isr_at, (f"min.insync.replicas {isr}{unset if isr_at is None else ''}: an "
                       "acknowledged write may exist on one broker only; use 2")
    elif isr is not None and rf is not None and isr >= rf:
        yield isr_at, (f"min.insync.replicas {isr} with replication factor {rf}: one broker "
                       "down stops every producer (acks=all); use replication factor - 1")
    unclean, at = cfg.get("unclean.leader.election.enable")
    if (unclean.split() or [""])[0].lower() in TRUE:
        yield at, ("unclean.leader.election.enable true: an out-of-sync replica may become "
                   "leader and drop acknowledged writes")


@rule("kafka-replication", claims=["C13-restart-persistence", "C01-ha-probes"])
def kafka_replication(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Kafka brokers: replication factor >= 3, 2 <= min.insync.replicas < it, no unclean
    leader election."""
    seen: set[tuple[str, int | None, str]] = set()
    for c in resolve(resources):
        if not _is_broker(c):
            continue
        cfg = _config(c)
        for at, msg in _problems(cfg):
            res, line = (at.res, at.line) if at is not None else cfg.where()
            text = msg if res is c.res else f"{c.res.ref}: {msg}"
            if (res.ref, line, text) not in seen:
                seen.add((res.ref, line, text))
                yield Problem(res, text, c.name if res is c.res else None, line)

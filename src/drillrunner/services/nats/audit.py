"""NATS's audit rule and data directory.

A nats-server keeps JetStream in its `store_dir` (config file, `--store_dir`, else
/tmp/nats/jetstream): the data-on-pvc rule checks it through `server`. JetStream Streams
declared as resources (NACK, `jetstream.nats.io` `kind: Stream`) must survive a server loss
and a restart (C01, C13): replicated 3 times, on file storage (NACK's default is memory).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from drillrunner.audit.configs import nats_conf
from drillrunner.audit.k8s import FALSE, LONG_RUNNING, mapping
from drillrunner.audit.model import Problem, Resource, line_of
from drillrunner.audit.registry import rule
from drillrunner.audit.resolve import Container, Value
from drillrunner.audit.servers import DataDir, Server, image_base, program

_IMAGES = frozenset({"nats"})
_PROGRAMS = ("nats-server",)
DEFAULT_STORE = "/tmp/nats/jetstream"


def _is_server(c: Container) -> bool:
    words = [program(w) for w in c.words()]
    if "nats-server" in words:
        return True
    raw = c.words()
    return (image_base(c.image) in _IMAGES and c.res.kind in LONG_RUNNING
            and (not raw or raw[0].startswith("-")))


def _store(c: Container) -> DataDir | None:
    """The JetStream store directory, None when JetStream is off."""
    flag = c.flag("--store_dir", "-sd", after=_PROGRAMS)
    enabled = flag is not None or any(w.text in ("-js", "--jetstream")
                                      for w in c.after(*_PROGRAMS))
    conf_at = c.flag("--config", "-c", after=_PROGRAMS)
    file = c.file(conf_at.text) if conf_at is not None else None
    conf = nats_conf(file.text) if file is not None else {}
    js = conf.get("jetstream")
    if js is not None:
        enabled = enabled or js.value.lower() not in FALSE
    if not enabled:
        return None
    if flag is not None:
        return DataDir(flag.text, "JetStream store_dir", flag)
    for key in ("jetstream.store_dir", "jetstream.storedir", "jetstream.store"):
        if key in conf and file is not None:
            s = conf[key]
            return DataDir(s.value, "JetStream store_dir",
                           Value(s.value, file.res, file.line(s.line)))
    return DataDir(DEFAULT_STORE, "JetStream store_dir (default)")


def server(c: Container) -> Server | None:
    if not _is_server(c):
        return None
    store = _store(c)
    return Server("nats", "NATS", [store] if store else [], quorum=store is not None)


@rule("nats-stream-durability", claims=["C13-restart-persistence", "C01-ha-probes"])
def nats_stream_durability(resources: Sequence[Resource]) -> Iterator[Problem]:
    """JetStream Stream resources: 3 replicas and file storage."""
    for res in resources:
        if res.kind != "Stream" or not str(res.body.get("apiVersion", "")).startswith(
                "jetstream.nats.io/"):
            continue
        spec = mapping(res.body.get("spec"))
        at = line_of(res.body, "spec") or res.line
        n = spec.get("replicas", 1)
        if isinstance(n, int) and n < 3:
            unset = "" if "replicas" in spec else " (unset: the default)"
            yield Problem(res, f"replicas {n}{unset}: the stream does not survive the loss of "
                               "a server; use 3", line=line_of(spec, "replicas") or at)
        storage = str(spec.get("storage", "memory")).lower()
        if storage != "file":
            unset = "" if "storage" in spec else " (unset: NACK's default)"
            yield Problem(res, f"storage {storage}{unset}: the stream's messages are lost "
                               "when its servers restart; use storage: file",
                          line=line_of(spec, "storage") or at)

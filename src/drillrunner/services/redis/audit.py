"""Redis's audit rules, read from the effective configuration of each Redis container: the
config file mounted from a ConfigMap, then the `--option value` arguments that override it.

Persistence (C13, C04): AOF on and fsynced; a Redis without AOF loses the writes since its
last snapshot on every restart. Sentinel (C01): enough sentinels, and a quorum that is a
majority of them. Where Redis keeps its data (`dir`) is the data-on-pvc rule's, via `server`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from drillrunner.audit.configs import Directive, redis_conf
from drillrunner.audit.k8s import FALSE, LONG_RUNNING, TRUE, mapping
from drillrunner.audit.model import Problem, Resource, line_of
from drillrunner.audit.registry import rule
from drillrunner.audit.resolve import ConfigFile, Container, Value, replicas, resolve
from drillrunner.audit.servers import DataDir, Server, image_base, image_name, program

_IMAGES = frozenset({"redis", "redis-stack-server", "redis-sentinel"})
# The working directory (Redis's default `dir`) of each image family.
_DEFAULT_DIR = {"bitnami/redis": "/bitnami/redis/data"}


@dataclass
class RedisConfig:
    """Effective settings: each directive's last value and where it was set."""

    c: Container
    file: ConfigFile | None
    sentinel: bool
    values: dict[str, tuple[list[str], Value | None]] = field(default_factory=dict)
    monitors: list[tuple[list[str], Value | None]] = field(default_factory=list)

    def get(self, name: str) -> tuple[str | None, Value | None]:
        found = self.values.get(name)
        return (" ".join(found[0]), found[1]) if found else (None, None)

    def where(self) -> tuple[Resource, int | None]:
        """Where a missing setting belongs: the config file, else the container."""
        if self.file is not None:
            return self.file.res, self.file.line()
        return self.c.res, self.c.line


def _role(c: Container) -> str | None:
    words = [program(w) for w in c.words()]
    redis = image_base(c.image) in _IMAGES and c.res.kind in LONG_RUNNING
    if "redis-sentinel" in words or (("redis-server" in words or redis)
                                     and "--sentinel" in c.words()):
        return "sentinel"
    if "redis-server" in words:
        return "server"
    if not redis:
        return None
    raw = c.words()
    if raw and not (raw[0].startswith("-") or raw[0].endswith(".conf")):
        return None  # the image's entrypoint runs the server only for these (redis-cli...)
    return "sentinel" if "sentinel" in image_base(c.image) else "server"


def _config(c: Container, sentinel: bool) -> RedisConfig:
    words = c.words()
    start = next((i for i, w in enumerate(words)
                  if program(w) in ("redis-server", "redis-sentinel")), -1)
    rest = c.argv[start + 1:]
    path = rest[0].text if rest and not rest[0].text.startswith("-") else None
    file = c.file(path) if path else None
    cfg = RedisConfig(c, file, sentinel)
    if file is not None:
        for d in redis_conf(file.text):
            _apply(cfg, d, Value(" ".join(d.args), file.res, file.line(d.line)))
    i = 1 if path else 0
    while i < len(rest):
        word = rest[i]
        if word.text.startswith("--") and len(word.text) > 2:
            args: list[Value] = []
            i += 1
            while i < len(rest) and not rest[i].text.startswith("--"):
                args.append(rest[i])
                i += 1
            _apply(cfg, Directive(word.text[2:].lower(), [a.text for a in args], 0),
                   args[-1] if args else word)
        else:
            i += 1
    return cfg


def _apply(cfg: RedisConfig, d: Directive, where: Value) -> None:
    if d.name == "sentinel" and d.args[:1] == ["monitor"]:
        cfg.monitors.append((d.args[1:], where))
    elif d.name == "save":  # lines add up; `save ""` turns snapshots off
        before = [a for a in cfg.values.get("save", ([], None))[0] if a]
        off = not d.args or d.args == [""]
        cfg.values["save"] = ([""] if off else before + d.args, where)
    else:
        cfg.values[d.name] = (d.args, where)


def _dir(cfg: RedisConfig) -> DataDir:
    value, where = cfg.get("dir")
    if value:
        return DataDir(value, "Redis dir", where)
    work = cfg.c.body.get("workingDir")
    if work:
        return DataDir(str(work), "Redis dir (the working directory)")
    return DataDir(_DEFAULT_DIR.get(image_name(cfg.c.image), "/data"),
                   "Redis dir (the image's working directory)")


def server(c: Container) -> Server | None:
    role = _role(c)
    if role is None:
        return None
    if role == "sentinel":
        return Server("redis", "Redis Sentinel", quorum=True)
    return Server("redis", "Redis", [_dir(_config(c, False))], store="Redis")


def _aof(cfg: RedisConfig) -> Iterator[tuple[Resource, int | None, str]]:
    aof, where = cfg.get("appendonly")
    save, _ = cfg.get("save")
    env = cfg.c.env.get("REDIS_AOF_ENABLED")
    if aof is None and env is not None:
        aof, where = env.text, env
    if aof is None and image_name(cfg.c.image) == "bitnami/redis":
        aof = "yes"  # the image turns AOF on unless told otherwise
    no_snapshots = save is not None and save.strip('"') == ""
    if aof is None or aof.lower() in FALSE:
        what = "no persistence at all (AOF off, snapshots off: save \"\")" if no_snapshots \
            else "AOF off: the writes since the last RDB snapshot are lost on a restart"
        res, line = (where.res, where.line) if where else cfg.where()
        unset = " (appendonly is not set: it defaults to no)" if where is None else ""
        yield res, line, f"{what}{unset}; set appendonly yes"
    elif aof.lower() in TRUE:
        fsync, at = cfg.get("appendfsync")
        if fsync is not None and fsync.lower() == "no" and at is not None:
            yield at.res, at.line, ("appendfsync no: the kernel decides when the AOF reaches "
                                    "the disk; use everysec or always")


@rule("redis-persistence", claims=["C13-restart-persistence", "C04-persistent-storage"])
def redis_persistence(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Redis servers write an AOF (appendonly yes) that is fsynced (appendfsync not no)."""
    seen: set[tuple[str, int | None, str]] = set()
    for c in resolve(resources):
        if _role(c) != "server":
            continue
        for res, line, msg in _aof(_config(c, False)):
            text = f"{c.res.ref}: {msg}" if res is not c.res else msg
            if (res.ref, line, text) not in seen:  # one ConfigMap, several workloads
                seen.add((res.ref, line, text))
                yield Problem(res, text, c.name if res is c.res else None, line)


def _quorum(cfg: RedisConfig, n: int) -> Iterator[tuple[Resource, int | None, str]]:
    majority = n // 2 + 1
    env = cfg.c.env.get("REDIS_SENTINEL_QUORUM")
    monitors = list(cfg.monitors)
    if not monitors and env is not None:
        monitors = [(["?", "?", "?", env.text], env)]
    for args, where in monitors:
        if len(args) < 4 or not args[3].isdigit() or where is None:
            continue
        quorum = int(args[3])
        if quorum < majority or quorum > n:
            why = ("a minority can declare the master down" if quorum < majority
                   else "more than there are sentinels: no failover can ever start")
            yield where.res, where.line, (f"sentinel monitor {args[0]}: quorum {quorum} with "
                                          f"{n} sentinel(s): {why}; use {majority}")


@rule("redis-sentinel-quorum", claims=["C01-ha-probes"])
def redis_sentinel_quorum(resources: Sequence[Resource]) -> Iterator[Problem]:
    """At least 3 sentinels, and each monitored master's quorum is a majority of them."""
    done: set[str] = set()
    for c in resolve(resources):
        if _role(c) != "sentinel" or c.res.ref in done:
            continue
        done.add(c.res.ref)
        n = replicas(c.res)
        spec = mapping(c.res.body.get("spec"))
        if n < 3:
            yield Problem(c.res, f"{n} sentinel(s): with fewer than 3, losing one leaves no "
                                 "majority to authorise a failover", c.name,
                          line_of(spec, "replicas") or c.res.line)
        for res, line, msg in _quorum(_config(c, True), n):
            yield Problem(res, f"{c.res.ref}: {msg}" if res is not c.res else msg,
                          c.name if res is c.res else None, line)

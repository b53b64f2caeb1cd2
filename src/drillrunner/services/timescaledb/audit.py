"""PostgreSQL's (TimescaleDB's) audit rule and data directory, read from each server's
effective configuration: postgresql.conf mounted from a ConfigMap (`-c config_file=...`),
then `-c name=value` / `--name=value` arguments, over PostgreSQL's defaults.

The data directory (`-D`, `data_directory`, `PGDATA`, else the image's) is the data-on-pvc
rule's, via `server`. Commits (C13): synchronous_commit not off, and where there are
standbys, a synchronous standby named, so a failover cannot lose acknowledged commits.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from drillrunner.audit.configs import pg_conf
from drillrunner.audit.k8s import LONG_RUNNING, pod_labels
from drillrunner.audit.model import Problem, Resource
from drillrunner.audit.registry import rule
from drillrunner.audit.resolve import ConfigFile, Container, Value, replicas, resolve
from drillrunner.audit.servers import DataDir, Server, image_base, image_name, program

_IMAGES = frozenset({"postgres", "postgresql", "timescaledb", "timescaledb-ha", "postgis",
                     "pgvector"})
_PROGRAMS = ("postgres", "postmaster", "docker-entrypoint.sh", "pg_ctl")
_DEFAULT_DATA = {"bitnami/postgresql": "/bitnami/postgresql/data",
                 "timescale/timescaledb-ha": "/home/postgres/pgdata/data"}


@dataclass
class PgConfig:
    c: Container
    file: ConfigFile | None
    values: dict[str, Value] = field(default_factory=dict)

    def where(self) -> tuple[Resource, int | None]:
        if self.file is not None:
            return self.file.res, self.file.line()
        return self.c.res, self.c.line


def _is_server(c: Container) -> bool:
    if image_base(c.image) not in _IMAGES or c.res.kind not in LONG_RUNNING:
        return False
    words = [program(w) for w in c.words()]
    return not words or any(w in _PROGRAMS for w in words) or words[0].startswith("-")


def _options(c: Container) -> list[tuple[str, Value]]:
    """`-c name=value` and `--name=value` options of the server, in order."""
    out = []
    argv = c.after("postgres", "postmaster") if any(
        program(w) in ("postgres", "postmaster") for w in c.words()) else c.argv
    for i, v in enumerate(argv):
        text = v.text
        if text == "-c" and i + 1 < len(argv):
            text, v = argv[i + 1].text, argv[i + 1]
        elif text.startswith("--") and "=" in text:
            text = text[2:]
        else:
            continue
        name, sep, value = text.partition("=")
        if sep:
            out.append((name.strip().lower().replace("-", "_"),
                        Value(value.strip().strip("'"), v.res, v.line)))
    return out


def _config(c: Container) -> PgConfig:
    opts = _options(c)
    path = next((v.text for k, v in reversed(opts) if k == "config_file"), None)
    file = c.file(path) if path else next(
        (f for p, f in c.files.items() if p.endswith("/postgresql.conf")), None)
    cfg = PgConfig(c, file)
    if file is not None:
        for name, s in pg_conf(file.text).items():
            cfg.values[name] = Value(s.value, file.res, file.line(s.line))
    for name, v in opts:
        cfg.values[name] = v
    return cfg


def _data_dir(cfg: PgConfig) -> DataDir:
    c = cfg.c
    flag = c.flag("-D", "--pgdata", after=("postgres", "postmaster", "pg_ctl"))
    if flag is not None:
        return DataDir(flag.text, "PostgreSQL -D", flag)
    if "data_directory" in cfg.values:
        return DataDir(cfg.values["data_directory"].text, "data_directory",
                       cfg.values["data_directory"])
    for name in ("PGDATA", "POSTGRESQL_DATA_DIR"):
        if name in c.env:
            return DataDir(c.env[name].text, name, c.env[name])
    return DataDir(_DEFAULT_DATA.get(image_name(c.image), "/var/lib/postgresql/data"),
                   "PGDATA (the image's default)")


def server(c: Container) -> Server | None:
    if not _is_server(c):
        return None
    return Server("timescaledb", "PostgreSQL", [_data_dir(_config(c))], store="PostgreSQL")


def _names_standby(cfg: PgConfig) -> bool:
    """synchronous_standby_names set in the config, the arguments, the environment an init
    script applies it from, or an init script (ALTER SYSTEM)."""
    value = cfg.values.get("synchronous_standby_names")
    if value is not None:
        return bool(value.text.strip().strip("'\""))
    if any(k.endswith("SYNCHRONOUS_STANDBY_NAMES") and v.text.strip()
           for k, v in cfg.c.env.items()):
        return True
    if cfg.c.env.get("POSTGRESQL_NUM_SYNCHRONOUS_REPLICAS", Value("0", cfg.c.res, None)
                     ).text.strip() not in ("", "0"):
        return True  # the bitnami image writes synchronous_standby_names from it
    return any("synchronous_standby_names" in f.text.lower() and "alter system" in
               f.text.lower() for f in cfg.c.files.values())


def _cluster(c: Container) -> tuple[str, str]:
    labels = pod_labels(c.res)
    name = labels.get("app.kubernetes.io/instance") or labels.get("app.kubernetes.io/name") \
        or labels.get("app") or c.res.name
    return c.res.namespace, str(name)


@rule("postgres-synchronous-commit", claims=["C13-restart-persistence"])
def postgres_synchronous_commit(resources: Sequence[Resource]) -> Iterator[Problem]:
    """PostgreSQL: synchronous_commit not off; with standbys, a synchronous standby named."""
    clusters: dict[tuple[str, str], list[PgConfig]] = {}
    for c in resolve(resources):
        if not _is_server(c):
            continue
        cfg = _config(c)
        clusters.setdefault(_cluster(c), []).append(cfg)
        commit = cfg.values.get("synchronous_commit")
        if commit is not None and commit.text.lower() == "off":
            text = ("synchronous_commit off: a commit is acknowledged before its WAL is on "
                    "disk, and lost by a crash")
            yield Problem(commit.res, text if commit.res is c.res else f"{c.res.ref}: {text}",
                          c.name if commit.res is c.res else None, commit.line)
    for (_, name), cfgs in clusters.items():
        members = sum(replicas(cfg.c.res) for cfg in {id(x.c.res): x for x in cfgs}.values())
        if members > 1 and not any(_names_standby(cfg) for cfg in cfgs):
            first = cfgs[0]
            res, line = first.where()
            text = (f"{members} PostgreSQL members ({name}) and no synchronous_standby_names: "
                    "commits are acknowledged before a standby has them, so a failover "
                    "loses them")
            yield Problem(res, text if res is first.c.res else f"{first.c.res.ref}: {text}",
                          first.c.name if res is first.c.res else None, line)

"""PostgreSQL's (TimescaleDB's) audit rule and data directory, read from each server's
effective configuration: postgresql.conf mounted from a ConfigMap (`-c config_file=...`),
then `-c name=value` / `--name=value` arguments, over PostgreSQL's defaults. A server run
by Patroni (`patroni <config.yml>`) is configured by that file instead: the cluster-wide
`bootstrap.dcs` (synchronous_mode, postgresql.parameters), then the member's own
`postgresql.parameters` and `postgresql.data_dir`, then Patroni's PATRONI_POSTGRESQL_*
environment.

The data directory (`-D`, `data_directory`, `PGDATA`, else the image's) is the data-on-pvc
rule's, via `server`. Commits (C13): synchronous_commit not off, and where there are
standbys, a synchronous standby named (or Patroni's synchronous_mode on: Patroni then
names it), so a failover cannot lose acknowledged commits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from drillrunner.audit.configs import pg_conf
from drillrunner.audit.k8s import LONG_RUNNING, pod_labels
from drillrunner.audit.model import Problem, Resource
from drillrunner.audit.registry import rule
from drillrunner.audit.resolve import ConfigFile, Container, Value, replicas, resolve
from drillrunner.audit.servers import DataDir, Server, image_base, image_name, program

_IMAGES = frozenset({"postgres", "postgresql", "timescaledb", "timescaledb-ha", "postgis",
                     "pgvector"})
_PROGRAMS = ("postgres", "postmaster", "docker-entrypoint.sh", "pg_ctl", "patroni")
_DEFAULT_DATA = {"bitnami/postgresql": "/bitnami/postgresql/data",
                 "timescale/timescaledb-ha": "/home/postgres/pgdata/data"}


@dataclass
class PgConfig:
    c: Container
    file: ConfigFile | None
    values: dict[str, Value] = field(default_factory=dict)
    patroni: bool = False
    sync_mode: Value | None = None  # Patroni's bootstrap.dcs.synchronous_mode

    def where(self) -> tuple[Resource, int | None]:
        if self.file is not None:
            return self.file.res, self.file.line()
        return self.c.res, self.c.line


def _is_server(c: Container) -> bool:
    if c.res.kind not in LONG_RUNNING:
        return False
    if _patroni_path(c) is not None:
        return True  # Patroni runs PostgreSQL, whatever the image is called
    if image_base(c.image) not in _IMAGES:
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


def _patroni_path(c: Container) -> str | None:
    """The configuration file of `patroni <file>`, if Patroni runs the server."""
    words = c.words()
    for i, w in enumerate(words):
        if program(w) == "patroni":
            return words[i + 1] if i + 1 < len(words) else ""
    return None


def _key_line(text: str, key: str, after: int = 0) -> int | None:
    """1-based line of the first `key:` of a YAML text at or after line `after`."""
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*:")
    for n, line in enumerate(text.splitlines(), 1):
        if n >= after and pattern.match(line):
            return n
    return None


def _section(doc: Any, *keys: str) -> dict[str, Any]:
    for key in keys:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc if isinstance(doc, dict) else {}


def _yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _patroni_config(c: Container, path: str) -> PgConfig:
    import yaml

    file = c.file(path) if path else None
    cfg = PgConfig(c, file, patroni=True)
    try:
        doc = yaml.safe_load(file.text) if file is not None else None
    except yaml.YAMLError:
        doc = None
    if file is not None and isinstance(doc, dict):
        text = file.text
        dcs_at = _key_line(text, "dcs") or 0
        local_at = next((n for n, line in enumerate(text.splitlines(), 1)
                         if line.startswith("postgresql:")), 0)
        for params, start in ((_section(doc, "bootstrap", "dcs", "postgresql", "parameters"),
                               dcs_at), (_section(doc, "postgresql", "parameters"),
                                         local_at)):
            for name, value in params.items():
                line = _key_line(text, str(name), start)
                cfg.values[str(name).lower()] = Value(_yaml_text(value), file.res,
                                                      file.line(line))
        data_dir = _section(doc, "postgresql").get("data_dir")
        if data_dir:
            cfg.values["data_directory"] = Value(
                str(data_dir), file.res, file.line(_key_line(text, "data_dir", local_at)))
        dcs = _section(doc, "bootstrap", "dcs")
        if "synchronous_mode" in dcs:
            cfg.sync_mode = Value(_yaml_text(dcs["synchronous_mode"]), file.res,
                                  file.line(_key_line(text, "synchronous_mode", dcs_at)))
    env_dir = c.env.get("PATRONI_POSTGRESQL_DATA_DIR")
    if env_dir is not None:
        cfg.values["data_directory"] = env_dir
    return cfg


def _config(c: Container) -> PgConfig:
    patroni_path = _patroni_path(c)
    if patroni_path is not None:
        return _patroni_config(c, patroni_path)
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
    """The PostgreSQL server of `c`. Its backups are the generic `backups` rule's, unless
    its pod runs pgBackRest's backup API: then `postgres-pgbackrest-backups` judges them
    (a backup that reads the data files runs in the pod, a CronJob only triggers it)."""
    if not _is_server(c):
        return None
    store = None if _backup_api(c.spec) is not None else "PostgreSQL"
    return Server("timescaledb", "PostgreSQL", [_data_dir(_config(c))], store=store)


# -- pgBackRest's backup API in the server's pod (the timescaledb-ha image's
# /scripts/pgbackrest-rest.py: POST /backups/ runs `pgbackrest backup` there) ------------

_API_PROGRAM = "pgbackrest-rest.py"
_API_CALL = re.compile(r"https?://([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[-a-z0-9.]*)?"
                       r"(:\d+)?/backups\b")
_ROLE_LABELS = frozenset({"role", "spilo-role"})  # set at run time by Patroni


def _backup_api(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The pod's container serving pgBackRest's backup API, if any."""
    for c in spec.get("containers") or []:
        if not isinstance(c, dict):
            continue
        words = [str(w) for w in [*(c.get("command") or []), *(c.get("args") or [])]]
        if any(program(w) == _API_PROGRAM for w in words):
            return c
    return None


def _repo_path(c: Container) -> Value | None:
    """repo1-path: PGBACKREST_REPO1_PATH, else the mounted pgbackrest.conf's."""
    if "PGBACKREST_REPO1_PATH" in c.env:
        return c.env["PGBACKREST_REPO1_PATH"]
    conf = c.file(c.env["PGBACKREST_CONFIG"].text) if "PGBACKREST_CONFIG" in c.env else None
    conf = conf or next((f for p, f in c.files.items() if p.endswith("pgbackrest.conf")),
                        None)
    if conf is None:
        return None
    for n, line in enumerate(conf.text.splitlines(), 1):
        key, sep, value = line.partition("=")
        if sep and key.strip() == "repo1-path":
            return Value(value.strip(), conf.res, conf.line(n))
    return None


def _selects(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    """A Service's selector matches the pod template, Patroni's role label aside."""
    want = {k: v for k, v in selector.items() if k not in _ROLE_LABELS}
    return bool(want) and all(str(labels.get(k)) == str(v) for k, v in want.items())


def _callers(resources: Sequence[Resource], res: Resource) -> list[Resource]:
    """CronJobs of the namespace calling `/backups` on a Service that selects `res`'s pods."""
    labels = pod_labels(res)
    services = {str(r.name) for r in resources if r.kind == "Service"
                and r.namespace == res.namespace
                and _selects(dict((r.body.get("spec") or {}).get("selector") or {}), labels)}
    found = []
    for job in resources:
        if job.kind != "CronJob" or job.namespace != res.namespace:
            continue
        text = json.dumps(job.body)
        if any(m.group(1) in services for m in _API_CALL.finditer(text)):
            found.append(job)
    return found


@rule("postgres-pgbackrest-backups", claims=["C08-backup-restore"])
def postgres_pgbackrest_backups(resources: Sequence[Resource]) -> Iterator[Problem]:
    """PostgreSQL with pgBackRest's backup API in its pod: a CronJob calls it, and the
    repository (repo1-path) is on a PersistentVolumeClaim."""
    seen: set[int] = set()
    for c in resolve(resources):
        api = _backup_api(c.spec)
        if api is None or c.body is not api or id(c.res) in seen:
            continue
        if not any(_is_server(s) for s in resolve([c.res])):
            continue
        seen.add(id(c.res))
        if not _callers(resources, c.res):
            yield Problem(c.res, "pgBackRest's backup API runs in the pod but no CronJob in "
                                 f"namespace {c.res.namespace or '-'} calls it (POST "
                                 "http://<service>:<port>/backups/ on a Service that selects "
                                 "these pods): no backup is ever taken", c.name, c.line)
        repo = _repo_path(c) or Value("/var/lib/pgbackrest", c.res, None)
        backing = c.volume_for(repo.text)
        if not backing.durable:
            yield Problem(repo.res, f"the pgBackRest repository ({repo.text}) is on "
                                    f"{backing.describe()}: the backups and the archived WAL "
                                    "are lost with the pod; put it on a "
                                    "PersistentVolumeClaim or an object store",
                          c.name if repo.res is c.res else None,
                          backing.line if repo.line is None else repo.line)


def _names_standby(cfg: PgConfig) -> bool:
    """synchronous_standby_names set in the config, the arguments, the environment an init
    script applies it from, or an init script (ALTER SYSTEM); under Patroni, which owns
    that setting, its synchronous_mode."""
    if cfg.patroni:
        mode = cfg.sync_mode.text.lower() if cfg.sync_mode is not None else "off"
        return mode in ("on", "true", "quorum")
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
            if first.patroni and first.sync_mode is not None:
                res, line = first.sync_mode.res, first.sync_mode.line
            what = ("Patroni's synchronous_mode off" if first.patroni
                    else "no synchronous_standby_names")
            text = (f"{members} PostgreSQL members ({name}) and {what}: "
                    "commits are acknowledged before a standby has them, so a failover "
                    "loses them")
            yield Problem(res, text if res is first.c.res else f"{first.c.res.ref}: {text}",
                          first.c.name if res is first.c.res else None, line)

"""The systems rto_accuracy.py freezes: each starts real servers by drill's own code, names
the processes a freeze must stop, and builds a fresh workload client per repetition."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Protocol, cast

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from drillrunner.core.errors import StackError
from drillrunner.engine.history import OpUnknown, WorkloadClient
from drillrunner.services.etcd.local import EtcdDeployment
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.local import PostgresDeployment
from drillrunner.services.timescaledb.workload import SequencedWrites
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor, tree_pids

REDIS_SERVER = "/usr/bin/redis-server"
PG_TABLE = "bench_rto"


class Target(Protocol):
    workload: str  # the name recorded in the History, as drill's workload would record it

    def start(self) -> str:
        """Start the servers; return a one-line description."""

    def frozen_pids(self) -> list[int]:
        """Every process the freeze stops, in signalling order (listed before the stop, so
        the stop itself is a few os.kill calls)."""

    def client(self, rep: int) -> WorkloadClient: ...

    def stop(self) -> None:
        """Stop every server this target started, by PID."""


class SetWorkload:
    """SET bench:<rep>:<seq> with one bounded attempt (no retries), like drill's workload."""

    def __init__(self, port: int, timeout: float, rep: int) -> None:
        self.prefix = f"bench:{rep}:"
        self.r = Redis(host="127.0.0.1", port=port, socket_timeout=timeout,
                       socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def write(self, seq: int) -> None:
        try:
            self.r.set(f"{self.prefix}{seq}", seq)
        except RedisTimeoutError as exc:  # sent, maybe applied: indeterminate
            raise OpUnknown(str(exc)) from exc

    def read_back(self, seqs: Collection[int]) -> set[int]:
        keys = [f"{self.prefix}{s}" for s in seqs]
        values = cast("list[bytes | None]", self.r.mget(keys))  # a sync client's answer
        return {s for s, v in zip(seqs, values, strict=True) if v is not None}

    def close(self) -> None:
        self.r.close()


class RedisFreeze:
    """A standalone redis-server, frozen whole (it is one process)."""

    workload = "redis.set"
    member = "bench-redis"

    def __init__(self, sup: Supervisor, state: Path, settings: StackSettings,
                 timeout: float) -> None:
        self.sup, self.dir, self.timeout = sup, state / "redis", timeout
        self.port = settings.port("redis-0")

    def start(self) -> str:
        self.dir.mkdir(exist_ok=True)
        pid = self.sup.start(ProcessSpec(
            name=self.member,
            argv=[REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                  "--appendonly", "no", "--dir", str(self.dir), "--protected-mode", "yes"],
            port=self.port, log=self.dir / "redis.log", cwd=self.dir))
        return f"redis-server pid {pid} on 127.0.0.1:{self.port}"

    def frozen_pids(self) -> list[int]:
        pid = self.sup.pid(self.member)
        if pid is None:
            raise StackError(f"{self.member} is not running")
        return tree_pids(pid)

    def client(self, rep: int) -> WorkloadClient:
        return SetWorkload(self.port, self.timeout, rep)

    def stop(self) -> None:
        self.sup.stop(self.member)


class PostgresSyncReplicaFreeze:
    """PostgreSQL 15 primary + synchronous streaming replica, as `drill stack up` makes them
    (PostgresDeployment: synchronous_standby_names = the replica, synchronous_commit = on),
    written to by drill's own `timescaledb.sequenced_writes` client; the replica is frozen
    whole, as the `timescaledb.pause_member` fault does (a paused VM or container).

    Every process of the replica is stopped, not its process group: PostgreSQL's children
    call setsid(), so the group holds the postmaster alone, and freezing it stalls nothing.
    The walreceiver is the only replica process on a commit's path (it writes, flushes and
    acknowledges the WAL; synchronous_commit = on waits for the flush, not the replay), so
    freezing it alone would stall commits the same way, but it models a stalled WAL link
    on a replica that still answers queries, not a paused replica."""

    workload = "timescaledb.sequenced_writes"

    def __init__(self, sup: Supervisor, state: Path, settings: StackSettings,
                 timeout: float) -> None:
        self.etcd = EtcdDeployment(settings, state, sup)  # Patroni's DCS
        self.deployment = PostgresDeployment(settings, state, sup)
        self.timeout = timeout
        self.primary = self.replica = ""

    def start(self) -> str:
        dep = self.deployment
        self.etcd.up()
        dep.up()
        leader = dep.leader()
        if leader is None:
            raise StackError("Patroni elected no leader")
        self.primary = leader
        self.replica = next(m.name for m in dep.members() if m.name != leader)
        PG_PRIMARY, PG_REPLICA = self.primary, self.replica
        names = sql.fetch_value(dep.dsn(PG_PRIMARY), "SHOW synchronous_standby_names")
        commit = sql.fetch_value(dep.dsn(PG_PRIMARY), "SHOW synchronous_commit")
        sync = [s for s in sql.standbys(dep.dsn(PG_PRIMARY))
                if s.name == PG_REPLICA and s.sync_state == "sync" and s.state == "streaming"]
        if not sync or commit != "on":
            raise StackError(f"{PG_REPLICA} is not a synchronous standby "
                             f"(synchronous_standby_names={names!r}, synchronous_commit={commit})")
        self._setup_client().close()
        return (f"PostgreSQL {PG_PRIMARY} (pid {dep.sup.pid(PG_PRIMARY)}, port "
                f"{dep.settings.port(PG_PRIMARY)}) + synchronous replica {PG_REPLICA} "
                f"(pid {dep.sup.pid(PG_REPLICA)}, {len(self.frozen_pids())} processes); "
                f"synchronous_standby_names={names}, synchronous_commit={commit}")

    def _setup_client(self) -> SequencedWrites:
        dep = self.deployment
        client = SequencedWrites(dep.cluster_dsn(self.timeout), PG_TABLE, "setup", self.timeout)
        client.create_table(hypertable=dep.timescaledb_installed())
        return client

    def frozen_pids(self) -> list[int]:
        # Patroni first, then the postmaster: neither can start a new process meanwhile.
        pids = self.deployment.processes(self.replica)
        if not pids:
            raise StackError(f"{self.replica} is not running")
        return pids

    def client(self, rep: int) -> WorkloadClient:
        # A fresh run key per repetition, as each drill run gets one.
        return SequencedWrites(self.deployment.cluster_dsn(self.timeout), PG_TABLE,
                               f"bench-{rep}-{uuid.uuid4().hex[:8]}", self.timeout)

    def stop(self) -> None:
        self.deployment.down()  # thaws a frozen member first, then stops each by PID
        self.etcd.down()

"""Sequence-numbered single-row inserts that follow the primary across a failover."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any

from drillrunner.core.actions import workload
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpUnknown, WorkloadClient
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.ops import pg_ops
from drillrunner.services.timescaledb.roles import settled_primary

if TYPE_CHECKING:
    from psycopg import Connection

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class SequencedWrites:
    """One autocommit INSERT per operation, keyed by (run key, seq).

    The run key is unique per client, so reruns on the same stack never collide. The
    connection string lists every member with target_session_attrs=read-write, so the
    client reconnects to whichever member is the primary.
    """

    def __init__(self, dsn: str, table: str, run_key: str, timeout: float,
                 read_dsn: Callable[[], str | None] | None = None) -> None:
        if not _IDENT.match(table):
            raise ActionFailed(f"table name {table!r} must be a lowercase SQL identifier")
        self.dsn = dsn
        # Where the rows are read back: the settled primary (None: not settled yet).
        self.read_dsn = read_dsn or (lambda: dsn)
        self.table = table
        self.run_key = run_key
        self.timeout = timeout
        self._conn: Connection[tuple[Any, ...]] | None = None

    def create_table(self, hypertable: bool, timeout: float = 15.0) -> None:
        import psycopg

        # A hypertable's unique keys must hold its time column.
        key = "run, seq, at" if hypertable else "run, seq"
        ddl = [
            f"CREATE TABLE IF NOT EXISTS {self.table} (run text NOT NULL, seq bigint NOT NULL,"
            f" at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY ({key}))",
        ]
        if hypertable:
            ddl = [
                "CREATE EXTENSION IF NOT EXISTS timescaledb",
                *ddl,
                f"SELECT create_hypertable('{self.table}', 'at', if_not_exists => true)",
            ]

        def run() -> bool:
            with sql.connect(self.dsn, for_writes=True) as conn:
                for stmt in ddl:
                    sql.execute_bounded(conn, stmt, [], 5.0)
            return True

        poll_until(run, timeout=timeout, what=f"the workload table {self.table}",
                   retry_on=(psycopg.Error, sql.Indeterminate))

    def _connection(self) -> Connection[tuple[Any, ...]]:
        if self._conn is not None and sql.alive(self._conn):
            return self._conn
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        # A failure here is certain: nothing was sent.
        self._conn = sql.connect(self.dsn, self.timeout, for_writes=True)
        return self._conn

    def write(self, seq: int) -> None:
        conn = self._connection()
        try:
            sql.execute_bounded(
                conn, f"INSERT INTO {self.table} (run, seq) VALUES ($1, $2)",
                [self.run_key, str(seq)], self.timeout,
            )
        except sql.Indeterminate as exc:
            self._conn = None  # execute_bounded closed it
            raise OpUnknown(str(exc)) from None

    def read_back(self, seqs: Collection[int]) -> set[int]:
        return self.read_from(self.read_dsn, seqs)

    def read_from(self, dsn: str | Callable[[], str | None], seqs: Collection[int],
                  timeout: float = 30.0) -> set[int]:
        """Which of `seqs` the server at `dsn` holds (retried while it is unavailable or,
        for a callable, while it names no server)."""
        import psycopg

        wanted = sorted(seqs)

        def read() -> set[int] | None:
            where = dsn() if callable(dsn) else dsn
            if where is None:
                return None
            rows = sql.fetch(
                where, f"SELECT seq FROM {self.table} WHERE run = %s AND seq = ANY(%s)",
                (self.run_key, wanted), timeout=10.0,
            )
            return {int(r[0]) for r in rows} | {-1}  # -1: a truthy marker for poll_until

        found = poll_until(read, timeout=timeout, interval=0.2, what="reading the rows back",
                           retry_on=(psycopg.Error,))
        return found - {-1}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@workload("timescaledb.sequenced_writes")
def sequenced_writes(
    ctx: RunContext, timeout: Duration = 1.0, table: str = "drill_writes"
) -> WorkloadClient:
    """Autocommit single-row INSERTs through a multi-host connection that follows the
    primary. A write not acknowledged within `timeout` (e.g. blocked by synchronous
    replication) is recorded as unknown. The rows are read back from the primary PostgreSQL
    and Patroni agree on, once they do."""
    ops = pg_ops(ctx.target)

    def settled() -> str | None:
        primary = settled_primary(ctx.target)
        return ops.dsn(primary) if primary else None

    client = SequencedWrites(
        ops.cluster_dsn(timeout), table, f"{ctx.scenario}-{uuid.uuid4().hex[:12]}", timeout,
        read_dsn=settled)
    client.create_table(hypertable=ops.timescaledb_installed())
    return client

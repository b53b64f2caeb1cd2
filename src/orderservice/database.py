"""Orders into PostgreSQL with a hard deadline on every call, connecting included.

libpq's connect_timeout cannot go below 2 s and a frozen primary accepts TCP connections,
so each call runs in a worker thread and the request waits at most `call_timeout`. A call
abandoned before its statement was sent is never sent (certainly not applied); one
abandoned after is indeterminate. psycopg is imported inside the worker functions.
"""

from __future__ import annotations

import queue
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from failfast import pg as sql

if TYPE_CHECKING:
    from psycopg import Connection

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Outcome(StrEnum):
    OK = "ok"
    NOT_APPLIED = "not-applied"  # never sent, or refused by the server
    UNKNOWN = "unknown"  # sent; no answer in time or the connection broke


@dataclass(frozen=True)
class CallResult:
    outcome: Outcome
    detail: str = ""
    rows: list[tuple[Any, ...]] = field(default_factory=list)


@dataclass
class _Ticket:
    """Who decides a slow call's fate first: the waiting request or the worker."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    abandoned: bool = False
    sent: bool = False


class Database:
    def __init__(self, dsn: str, table: str, call_timeout: float, workers: int = 16) -> None:
        if not _IDENT.match(table):
            raise ValueError(f"table name {table!r} must be a lowercase SQL identifier")
        self.dsn = dsn
        self.table = table
        self.call_timeout = call_timeout
        self._idle: queue.SimpleQueue[Connection[tuple[Any, ...]]] = queue.SimpleQueue()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pg")
        self._schema_ready = False

    def _connection(self) -> Connection[tuple[Any, ...]]:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return sql.connect(self.dsn, self.call_timeout)
            if sql.alive(conn):
                return conn
            conn.close()

    def _work(self, ticket: _Ticket, query: str, params: list[str | None]) -> CallResult:
        import psycopg

        try:
            conn = self._connection()
        except psycopg.Error as exc:
            return CallResult(Outcome.NOT_APPLIED, f"cannot connect: {_line(exc)}")
        with ticket.lock:
            if ticket.abandoned:
                self._idle.put(conn)  # the request gave up: do not send it late
                return CallResult(Outcome.NOT_APPLIED, "abandoned before sending")
            ticket.sent = True
        try:
            rows = sql.execute_bounded(conn, query, params, self.call_timeout)
        except sql.Indeterminate as exc:
            return CallResult(Outcome.UNKNOWN, str(exc))
        except sql.Rejected as exc:
            self._idle.put(conn)
            return CallResult(Outcome.NOT_APPLIED, f"refused: {exc}")
        except psycopg.Error as exc:  # could not even be sent
            conn.close()
            return CallResult(Outcome.NOT_APPLIED, _line(exc))
        self._idle.put(conn)
        return CallResult(Outcome.OK, rows=rows)

    def call(self, query: str, params: list[str | None]) -> CallResult:
        ticket = _Ticket()
        future = self._pool.submit(self._work, ticket, query, params)
        try:
            return future.result(timeout=self.call_timeout)
        except FutureTimeout:
            with ticket.lock:
                ticket.abandoned = True
                sent = ticket.sent
            if sent:
                return CallResult(Outcome.UNKNOWN, f"no answer within {self.call_timeout:g}s")
            return CallResult(Outcome.NOT_APPLIED,
                              f"no connection within {self.call_timeout:g}s")

    def ensure_schema(self) -> CallResult:
        if self._schema_ready:
            return CallResult(Outcome.OK)
        result = self.call(
            f"CREATE TABLE IF NOT EXISTS {self.table} (client_order_id text PRIMARY KEY,"
            " symbol text NOT NULL, quantity integer NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT clock_timestamp())", [])
        self._schema_ready = result.outcome is Outcome.OK
        return result

    def insert_order(self, client_order_id: str, symbol: str, quantity: int) -> CallResult:
        # Idempotent on the client's order id: a retried order is acknowledged once.
        return self.call(
            f"INSERT INTO {self.table} (client_order_id, symbol, quantity) VALUES ($1, $2, $3)"
            " ON CONFLICT (client_order_id) DO NOTHING", [client_order_id, symbol, str(quantity)])

    def ping(self) -> CallResult:
        return self.call("SELECT 1", [])

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

"""PostgreSQL calls with hard time limits; psycopg is imported inside the functions.

Writes use libpq's asynchronous calls with a client-side deadline instead of
statement_timeout: a commit waiting for a synchronous standby ignores cancellation (the
server answers the cancel with a WARNING and reports the commit as successful), so only
the client can bound it. On expiry the connection is cancelled (which frees the server's
backend) and closed, and the outcome is reported as indeterminate.
"""

from __future__ import annotations

import contextlib
import select
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg import Connection

# SQLSTATE classes after which a statement's effect is unknown: connection exceptions and
# operator intervention (a backend terminated while waiting for sync rep has committed).
_INDETERMINATE_CLASSES = ("08", "57")


class Indeterminate(Exception):
    """The statement was sent; whether it took effect is unknown."""


class Rejected(Exception):
    """The server certainly did not apply the statement (it answered with an error)."""


def connect(dsn: str, timeout: float = 2.0, *, for_writes: bool = False) -> Connection[
    tuple[Any, ...]
]:
    """An autocommit connection; `timeout` bounds connecting and, unless `for_writes`,
    every statement. Write connections get no statement_timeout: a timeout that fired
    during a synchronous replication wait would turn an unreplicated commit into a success.
    """
    import psycopg

    limit = 0 if for_writes else int(timeout * 1000)
    return psycopg.connect(
        dsn,
        autocommit=True,
        connect_timeout=max(1, round(timeout)),
        options=f"-c statement_timeout={limit}",
    )


def fetch(dsn: str, query: str, params: Sequence[Any] = (), timeout: float = 2.0) -> list[
    tuple[Any, ...]
]:
    """Rows of one read-only query (never a commit: statement_timeout cannot bound those)."""
    with connect(dsn, timeout) as conn:
        cur = conn.execute(query.encode(), params)  # bytes: a plain query, not a template
        return cur.fetchall() if cur.description else []


def fetch_value(dsn: str, query: str, params: Sequence[Any] = (), timeout: float = 2.0) -> Any:
    rows = fetch(dsn, query, params, timeout)
    return rows[0][0] if rows else None


def _wait(fd: int, deadline: float, *, write: bool) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    poller = select.poll()
    poller.register(fd, select.POLLOUT if write else select.POLLIN)
    if not poller.poll(remaining * 1000):
        raise TimeoutError


def alive(conn: Connection[tuple[Any, ...]]) -> bool:
    """False when the server has closed an idle connection (e.g. its primary was killed),
    so a write is not sent into a dead socket and wrongly counted as indeterminate."""
    import psycopg
    from psycopg import pq

    pg = conn.pgconn
    if conn.closed or pg.status != pq.ConnStatus.OK:
        return False
    poller = select.poll()
    poller.register(pg.socket, select.POLLIN)
    if poller.poll(0):
        try:
            pg.consume_input()
        except psycopg.OperationalError:
            return False
    return pg.status == pq.ConnStatus.OK


def abandon(conn: Connection[tuple[Any, ...]], cancel_timeout: float = 0.2) -> None:
    """Cancel whatever the server runs for `conn`, then close it."""
    with contextlib.suppress(Exception):  # best effort: the connection is dropped anyway
        conn.cancel_safe(timeout=cancel_timeout)
    conn.close()


def execute_bounded(
    conn: Connection[tuple[Any, ...]], query: str, params: Sequence[str | None], timeout: float
) -> list[tuple[Any, ...]]:
    """Run one statement (text parameters) and return its rows within `timeout` seconds.

    Raises psycopg.OperationalError if it could not even be sent (certainly not applied),
    Rejected on a server error, Indeterminate on a timeout or a connection lost mid-way
    (the connection is then abandoned).
    """
    import psycopg
    from psycopg import pq

    pg = conn.pgconn
    deadline = time.monotonic() + timeout
    notices: list[str] = []

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(diag.message_primary or "")

    pg.send_query_params(query.encode(), [p.encode() if p is not None else None for p in params])
    conn.add_notice_handler(on_notice)
    results = []
    try:
        while pg.flush():
            _wait(pg.socket, deadline, write=True)
        while True:
            pg.consume_input()
            if not pg.is_busy():
                break
            _wait(pg.socket, deadline, write=False)
        while (res := pg.get_result()) is not None:
            results.append(res)
    except TimeoutError:
        abandon(conn)
        raise Indeterminate(f"no answer within {timeout:g}s") from None
    except psycopg.OperationalError as exc:
        conn.close()
        raise Indeterminate(f"connection lost: {_first_line(str(exc))}") from None
    finally:
        conn.remove_notice_handler(on_notice)
    # A cancelled synchronous-replication wait reports success with this WARNING: the
    # commit is local only and may vanish in a failover.
    if any("synchronous replication" in n for n in notices):
        raise Indeterminate(f"committed locally only: {notices[0]}")
    rows: list[tuple[Any, ...]] = []
    for res in results:
        if res.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
            rows.extend(
                tuple(_text(res.get_value(r, c)) for c in range(res.nfields))
                for r in range(res.ntuples)
            )
            continue
        state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
        message = _first_line(res.get_error_message())
        if state[:2] in _INDETERMINATE_CLASSES or not state:
            conn.close()
            raise Indeterminate(f"{state or 'no SQLSTATE'}: {message}")
        raise Rejected(f"{state}: {message}")
    return rows


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text

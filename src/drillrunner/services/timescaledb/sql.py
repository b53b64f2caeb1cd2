"""The drivers' PostgreSQL calls: the bounded client (failfast.pg) and what a drill reads.

`WRITE_PROBE`, `standbys`, `streams`, `wait_setting` and `wait_writable` are drill's own;
the rest is re-exported so drivers name one module.
"""

from __future__ import annotations

from dataclasses import dataclass

from drillrunner.core.waiting import poll_until
from failfast.pg import (
    Indeterminate,
    Rejected,
    abandon,
    alive,
    connect,
    execute_bounded,
    fetch,
    fetch_value,
)

__all__ = ["WRITE_PROBE", "Indeterminate", "Rejected", "Standby", "abandon", "alive", "connect",
           "execute_bounded", "fetch", "fetch_value", "standbys", "streams", "wait_setting",
           "wait_writable"]

# A real write without a table: a transactional WAL message makes its commit wait for a
# synchronous standby. (`SELECT txid_current()` does not: a commit that wrote no other WAL
# skips the synchronous replication wait.)
WRITE_PROBE = "SELECT pg_logical_emit_message(true, 'drill', 'write probe')"


@dataclass(frozen=True)
class Standby:
    """One row of the primary's pg_stat_replication."""

    name: str
    state: str
    sync_state: str
    lag_bytes: float
    replay_lag: float | None
    reply_age: float | None


def standbys(dsn: str, timeout: float = 2.0) -> list[Standby]:
    rows = fetch(
        dsn,
        "SELECT application_name, state, sync_state,"
        " coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 'Infinity'),"
        " extract(epoch FROM replay_lag), extract(epoch FROM clock_timestamp() - reply_time)"
        " FROM pg_stat_replication",
        timeout=timeout,
    )
    return [
        Standby(
            str(r[0]), str(r[1]), str(r[2]), float(r[3]),
            None if r[4] is None else float(r[4]),
            None if r[5] is None else float(r[5]),
        )
        for r in rows
    ]


def streams(primary_dsn: str, replica: str, sync: bool | None = None) -> bool:
    """Whether the primary sees `replica` streaming (synchronously or asynchronously when
    `sync` says which); False when the primary does not answer."""
    import psycopg

    try:
        rows = standbys(primary_dsn)
    except psycopg.Error:
        return False
    return any(
        s.name == replica and s.state == "streaming"
        and (sync is None or s.sync_state == ("sync" if sync else "async"))
        for s in rows
    )


def wait_writable(dsn: str, *, timeout: float, what: str) -> None:
    """Wait until the server commits WRITE_PROBE (with synchronous replication on, once a
    synchronous standby confirms it)."""
    import psycopg

    def commits() -> bool:
        with connect(dsn, for_writes=True) as conn:
            execute_bounded(conn, WRITE_PROBE, [], 2.0)
        return True

    poll_until(commits, timeout=timeout, what=what,
               retry_on=(psycopg.Error, Indeterminate, Rejected))


def wait_setting(dsn: str, name: str, want: str, *, what: str, timeout: float = 10.0) -> None:
    """After pg_reload_conf(), which is asynchronous: wait until new sessions see `want`."""
    poll_until(lambda: fetch_value(dsn, f"SHOW {name}") == want, timeout=timeout, what=what)

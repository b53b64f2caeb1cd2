"""The drivers' PostgreSQL calls: the bounded client (failfast.pg) and what a drill reads.

`WRITE_PROBE` and `standbys` are drill's own; the rest is re-exported so drivers name one
module.
"""

from __future__ import annotations

from dataclasses import dataclass

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
           "execute_bounded", "fetch", "fetch_value", "standbys"]

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

"""Feast's stores as both targets keep them: the SQL registry (schema `feast_registry` of
database `feast` on the TimescaleDB primary, read with Feast's own role), the offline
canary table, and the online store (Redis database 5 on the current master).

`FeastStores` is the part of FeastOps that only reads and writes those stores; each target
gives it the two connections."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any

from drillrunner.services.feast import canary
from drillrunner.services.feast.canary import Truth
from drillrunner.targets.base import MemberRef

PG_ROLE = PG_DB = "feast"
SCHEMA = "feast_registry"
REDIS_DB = 5  # Feast's own Redis database: a flush drill touches nothing else
MATERIALIZE_START = "2000-01-01T00:00:00"
# Tables fingerprinted after a restore: (table, name column, proto column).
TABLES = (
    ("projects", "project_id", "project_proto"),
    ("entities", "entity_name", "entity_proto"),
    ("data_sources", "data_source_name", "data_source_proto"),
    ("feature_views", "feature_view_name", "feature_view_proto"),
    ("feature_services", "feature_service_name", "feature_service_proto"),
)


def present(connect: Any) -> bool:
    """Whether the registry holds the drill project's feature service; `connect()` opens a
    psycopg connection (no schema, table or database counts as absent)."""
    try:
        with connect() as conn:
            row = conn.execute(
                f"SELECT count(*) FROM {SCHEMA}.feature_services "
                "WHERE feature_service_name = %s AND project_id = %s",
                [canary.FEATURE_SERVICE, canary.PROJECT]).fetchone()
    except Exception:
        return False
    return bool(row and row[0])


def objects(connect: Any) -> dict[str, list[str]]:
    """Every registry object as name:md5(proto), by table: a fingerprint to compare."""
    found: dict[str, list[str]] = {}
    with connect() as conn:
        for table, name, proto in TABLES:
            rows = conn.execute(f"SELECT {name} || ':' || md5({proto}) FROM {SCHEMA}.{table} "
                                f"ORDER BY {name}").fetchall()
            found[table] = [str(r[0]) for r in rows]
    return found


class FeastStores(ABC):
    """FeastOps' store operations; a target provides `_feast_conn` (a psycopg connection
    as Feast's role on the primary) and `_redis_master` (the current Redis master)."""

    @abstractmethod
    def _feast_conn(self) -> Any: ...

    @abstractmethod
    def _redis_master(self) -> MemberRef: ...

    def _redis_conn(self) -> Any:
        from redis import Redis

        from drillrunner.services.redis import client

        master = self._redis_master()
        return Redis(host=master.host, port=master.port, db=REDIS_DB,
                     **client.no_retry_kwargs(2.0))

    def offline_truth(self) -> Truth:
        with self._feast_conn() as conn:
            rows = conn.execute(canary.TRUTH_QUERY, [list(canary.CANARIES)]).fetchall()
        return canary.truth_from_rows(rows)

    def online_store_keys(self) -> int:
        conn = self._redis_conn()
        try:
            return int(conn.dbsize())
        finally:
            conn.close()

    def flush_online_store(self) -> int:
        conn = self._redis_conn()
        try:
            keys = int(conn.dbsize())
            conn.flushdb()
            return keys
        finally:
            conn.close()

    def materialize_range(self) -> tuple[str, str]:
        return MATERIALIZE_START, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")

    def registry_present(self) -> bool:
        return present(self._feast_conn)

    def registry_objects(self) -> dict[str, list[str]]:
        return objects(self._feast_conn)

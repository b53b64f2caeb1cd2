"""Feast's SQL registry as both targets keep it: schema `feast_registry` of database `feast`
on the TimescaleDB primary, read with Feast's own role."""

from __future__ import annotations

from typing import Any

from drillrunner.services.feast import canary

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

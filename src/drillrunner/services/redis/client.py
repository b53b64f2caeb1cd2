"""Thin, explicit redis-py helpers: every client has short timeouts and no retries.

redis-py retries by default (an unreachable server took ~5 s to raise), which would hide
outages from a drill and slow every probe, so each call here fails fast and once.
redis-py is imported inside the functions to keep `drill --help` fast.
"""

from __future__ import annotations

from typing import Any

from drillrunner.targets.base import MemberRef
from failfast.redis_client import (
    PROBE_TIMEOUT,
    Conn,
    connect,
    make_connection,
    make_sentinel,
    no_retry_kwargs,
)

__all__ = ["MASTER_NAME", "PROBE_TIMEOUT", "Conn", "connect", "make_connection",
           "make_sentinel", "no_retry_kwargs"]

MASTER_NAME = "drill"


def connect_member(member: MemberRef, timeout: float = PROBE_TIMEOUT) -> Conn:
    return connect(member.host, member.port, timeout)


def info(member: MemberRef, section: str, timeout: float = PROBE_TIMEOUT) -> dict[str, Any]:
    """INFO <section> of a server, parsed by redis-py."""
    client = connect_member(member, timeout)
    try:
        result: dict[str, Any] = client.info(section)
        return result
    finally:
        client.close()


def sentinel_master(
    sentinel: MemberRef, name: str = MASTER_NAME, timeout: float = PROBE_TIMEOUT
) -> dict[str, Any]:
    """SENTINEL MASTER <name> as a dict (num-slaves, num-other-sentinels, flags...)."""
    client: Any = connect_member(sentinel, timeout)
    try:
        raw = client.execute_command("SENTINEL", "MASTER", name)
        if isinstance(raw, dict):
            return {str(k): v for k, v in raw.items()}
        items = list(raw)
        return {str(items[i]): items[i + 1] for i in range(0, len(items), 2)}
    finally:
        client.close()


def sentinel_master_addr(
    sentinel: MemberRef, name: str = MASTER_NAME, timeout: float = PROBE_TIMEOUT
) -> tuple[str, int] | None:
    """The master address one sentinel believes in (SENTINEL get-master-addr-by-name)."""
    client: Any = connect_member(sentinel, timeout)
    try:
        raw = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
    finally:
        client.close()
    if not raw:
        return None
    host, port = raw
    return str(host), int(port)

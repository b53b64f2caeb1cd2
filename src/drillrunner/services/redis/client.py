"""Thin, explicit redis-py helpers: every client has short timeouts and no retries.

redis-py retries by default (an unreachable server took ~5 s to raise), which would hide
outages from a drill and slow every probe, so each call here fails fast and once.
redis-py is imported inside the functions to keep `drill --help` fast.
"""

from __future__ import annotations

from typing import Any

from drillrunner.targets.base import MemberRef

MASTER_NAME = "drill"
PROBE_TIMEOUT = 0.5


def no_retry_kwargs(timeout: float) -> dict[str, Any]:
    """Connection arguments for one attempt bounded by `timeout` seconds."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "driver_info": None,  # Redis 7.0 has no CLIENT SETINFO: skip two round trips
        "decode_responses": True,
    }


# redis-py types each command's reply as `Awaitable | Any` (sync and async clients share
# the annotations); only the sync client is used here, so replies are plain values.
Conn = Any


def connect(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> Conn:
    from redis import Redis

    return Redis(host=host, port=port, **no_retry_kwargs(timeout))


# redis-py's Sentinel and Connection are untyped: handed out as Any, used in few places.
def make_sentinel(addrs: list[tuple[str, int]], timeout: float) -> Any:
    from redis.sentinel import Sentinel

    factory: Any = Sentinel
    kwargs = no_retry_kwargs(timeout)
    return factory(addrs, sentinel_kwargs=kwargs, **kwargs)


def make_connection(host: str, port: int, timeout: float) -> Any:
    from redis.connection import Connection

    factory: Any = Connection
    return factory(host=host, port=port, **no_retry_kwargs(timeout))


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

"""redis-py clients with short timeouts and no retries.

redis-py retries by default (an unreachable server took ~5 s to raise), which would hide
outages from a drill and slow every probe, and would stall the order service behind a dead
server, so each call here fails fast and once. redis-py is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

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

"""The kill-switch: its state lives in Redis (reached through the sentinels); while Redis
holds none, the default of kill-switch.yaml applies. Read on every order, never cached:
a cached "disengaged" would keep accepting orders after Redis became unreadable."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from failfast import redis_client as client
from orderservice.config import KillSwitchConfig, RedisTarget, SwitchState


class Source(StrEnum):
    REDIS = "redis"
    DEFAULT = "default"  # Redis answered and holds no state
    UNREADABLE = "unreadable"  # Redis did not answer


@dataclass(frozen=True)
class Reading:
    state: SwitchState | None
    source: Source
    error: str | None = None


class RedisUnavailable(Exception):
    pass


class RedisLink:
    """The master as the sentinels name it, with short timeouts and no retries."""

    def __init__(self, target: RedisTarget, timeout: float) -> None:
        self.target = target
        self.timeout = timeout
        self._sentinel = client.make_sentinel(list(target.sentinels), timeout)
        self._clients: dict[tuple[str, int], Any] = {}
        self._lock = threading.Lock()

    def master(self) -> Any:
        from redis.exceptions import RedisError

        try:
            host, port = self._sentinel.discover_master(self.target.master_name)
        except RedisError as exc:
            raise RedisUnavailable(f"no master known to the sentinels: {exc}") from None
        addr = (str(host), int(port))
        with self._lock:
            conn = self._clients.get(addr)
            if conn is None:
                conn = self._clients[addr] = client.connect(addr[0], addr[1], self.timeout)
        return conn

    def call(self, method: str, *args: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return getattr(self.master(), method)(*args)
        except RedisError as exc:
            raise RedisUnavailable(f"{type(exc).__name__}: {exc}") from None


class KillSwitch:
    def __init__(self, config: KillSwitchConfig, redis: RedisTarget) -> None:
        self.config = config
        self.link = RedisLink(redis, config.read_timeout)

    def read(self) -> Reading:
        try:
            raw = self.link.call("get", self.config.redis_key)
        except RedisUnavailable as exc:
            return Reading(None, Source.UNREADABLE, str(exc))
        if raw is None:
            return Reading(self.config.default, Source.DEFAULT)
        try:
            return Reading(SwitchState(raw), Source.REDIS)
        except ValueError:  # garbage in the key: treat as unreadable, not as "disengaged"
            return Reading(None, Source.UNREADABLE, f"unexpected value {raw!r}")

    def blocking_reason(self, reading: Reading) -> str | None:
        """Why orders must be rejected now, or None."""
        if reading.source is Source.UNREADABLE:
            return "kill-switch-unreadable" if self.config.fail_closed else None
        return "kill-switch-engaged" if reading.state is SwitchState.ENGAGED else None

    def set(self, state: SwitchState) -> None:
        self.link.call("set", self.config.redis_key, state.value)

    def healthy(self) -> str | None:
        """None if the Redis master answers a PING, else why not."""
        try:
            self.link.call("ping")
        except RedisUnavailable as exc:
            return str(exc)
        return None

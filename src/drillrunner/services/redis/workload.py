"""Sequence-numbered writes through Sentinel, classified the way Jepsen's history needs.

Each write asks the sentinels for the current master (one loopback round trip), so the
client follows a failover as soon as the sentinels have elected, then SETs
`drill:<run key>:<seq>` on one connection with explicit timeouts and no retries:
- no master known, connection refused or timed out while connecting, or an error reply
  (READONLY, LOADING, MISCONF): the SET certainly did not happen -> a plain exception;
- a timeout or a dropped connection after the command was sent -> OpUnknown.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from typing import Any

from drillrunner.core.actions import workload
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpUnknown
from drillrunner.services.redis import client
from drillrunner.services.redis.ops import redis_ops
from drillrunner.services.redis.topology import sentinels_of
from drillrunner.targets.base import MemberRef

READ_TIMEOUT = 5.0
READ_BATCH = 1000


class SequencedWrites:
    """A WorkloadClient writing one key per sequence number."""

    def __init__(self, sentinels: list[tuple[str, int]], run_key: str, timeout: float,
                 master_name: str = client.MASTER_NAME,
                 member_for: Callable[[str, int], MemberRef | None] | None = None) -> None:
        self.run_key = run_key
        self.timeout = timeout
        self.master_name = master_name
        self._sentinel = client.make_sentinel(sentinels, timeout)
        self._conns: dict[tuple[str, int], Any] = {}
        self._member_for = member_for
        self._addrs: dict[tuple[str, int], tuple[str, int]] = {}

    def _master(self) -> tuple[str, int]:
        """The master's address as the sentinels name it, mapped to where this client
        reaches it (kind: a port-forward); unmapped addresses are used as they are."""
        host, port = self._sentinel.discover_master(self.master_name)
        named = (str(host), int(port))
        if named not in self._addrs and self._member_for is not None:
            member = self._member_for(*named)
            if member is not None:  # names are stable; an unknown one is asked again
                self._addrs[named] = (member.host, member.port)
        return self._addrs.get(named, named)

    def key(self, seq: int) -> str:
        return f"drill:{self.run_key}:{seq}"

    def _connection(self, addr: tuple[str, int]) -> Any:
        conn = self._conns.get(addr)
        if conn is None:
            conn = client.make_connection(addr[0], addr[1], self.timeout)
            self._conns[addr] = conn
        return conn

    def write(self, seq: int) -> None:
        from redis.exceptions import ConnectionError, RedisError, ResponseError, TimeoutError

        try:
            host, port = self._master()
        except RedisError as exc:  # MasterNotFoundError included: nothing was sent
            raise ActionFailed(f"no master known to the sentinels: {exc}") from None
        conn = self._connection((host, port))
        try:
            conn.connect()  # a no-op when already connected
        except (RedisError, OSError) as exc:
            conn.disconnect()
            raise ActionFailed(f"cannot connect to {host}:{port}: {exc}") from None
        try:
            conn.send_command("SET", self.key(seq), str(seq))
            reply = conn.read_response()
        except ResponseError as exc:  # an error reply: the server refused the command
            raise ActionFailed(f"{host}:{port} refused the write: {exc}") from None
        except (ConnectionError, TimeoutError, OSError) as exc:
            # BusyLoadingError is a ConnectionError but a refusal (-LOADING reply).
            from redis.exceptions import BusyLoadingError

            conn.disconnect()
            if isinstance(exc, BusyLoadingError):
                raise ActionFailed(f"{host}:{port} is loading its data") from None
            raise OpUnknown(f"{host}:{port}: {type(exc).__name__}: {exc}") from None
        if reply not in ("OK", b"OK"):
            raise OpUnknown(f"unexpected reply {reply!r}")
        # Other sentinels may have moved on: ask them again on the next write.

    def read_back(self, seqs: Collection[int]) -> set[int]:
        """The seqs whose key the current master holds (MGET in batches)."""
        from redis.exceptions import RedisError

        def read() -> set[int]:
            host, port = self._master()
            conn = client.connect(host, port, READ_TIMEOUT)
            try:
                found: set[int] = set()
                ordered = sorted(seqs)
                for i in range(0, len(ordered), READ_BATCH):
                    batch = ordered[i : i + READ_BATCH]
                    values = conn.mget([self.key(s) for s in batch])
                    found.update(s for s, v in zip(batch, values, strict=True) if v is not None)
                return found
            finally:
                conn.close()

        if not seqs:
            return set()
        # The tier may still be settling (a master that is loading): retry for a while.
        return poll_until(lambda: read() or {-1}, timeout=30.0, interval=0.2,
                          what="a Redis master to read back from",
                          retry_on=(RedisError, OSError)) - {-1}

    def close(self) -> None:
        for conn in self._conns.values():
            conn.disconnect()
        self._conns.clear()
        for conn in self._sentinel.sentinels:  # redis-py's Sentinel has no close()
            conn.close()


@workload("redis.sequenced_writes")
def sequenced_writes(ctx: RunContext, timeout: Duration = 0.5) -> SequencedWrites:
    """SET drill:<scenario>-<random>:<seq> through Sentinel; `timeout` bounds each
    connect and each reply. The random part keeps reruns on one stack apart."""
    ops = redis_ops(ctx.target)
    sentinels = [(s.host, s.port) for s in sentinels_of(ctx.target)]
    run_key = f"{ctx.scenario}-{uuid.uuid4().hex[:8]}"
    return SequencedWrites(sentinels, run_key, timeout, ops.master_name, ops.member_for)

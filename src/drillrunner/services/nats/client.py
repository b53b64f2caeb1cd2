"""nats-py (asyncio) driven from plain threads, and the servers' HTTP monitoring endpoints.

The engine calls drivers from ordinary threads. One-shot calls (probes, readiness, stream
admin) run their coroutine with `asyncio.run`; the workload keeps one connection open on a
private event loop in a helper thread (`LoopThread`). nats-py is imported inside functions
so loading the catalog stays cheap. Every call has an explicit timeout.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.js.api import StreamInfo

T = TypeVar("T")

STREAM = "DRILL"
SUBJECT_PREFIX = "drill"
PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class StreamSpec:
    """The drill stream as the stack settings want it."""

    replicas: int
    name: str = STREAM

    @property
    def subjects(self) -> list[str]:
        return [f"{SUBJECT_PREFIX}.>"]


def urls(ports: list[int]) -> list[str]:
    return [f"nats://127.0.0.1:{p}" for p in ports]


async def _quiet(*_args: Any) -> None:
    """nats-py logs every failed connect attempt, disconnect and reconnect with a traceback
    by default; drill records outcomes itself."""


async def connect(servers: list[str], *, timeout: float = PROBE_TIMEOUT,
                  reconnect: bool = False, **options: Any) -> NATS:
    """One connection to the first server of `servers` that answers. Without `reconnect`
    a lost connection stays lost (probes and admin calls fail fast instead of waiting)."""
    import nats

    for callback in ("error_cb", "disconnected_cb", "reconnected_cb"):
        options.setdefault(callback, _quiet)
    conn: NATS = await nats.connect(
        servers,
        connect_timeout=timeout,
        allow_reconnect=reconnect,
        max_reconnect_attempts=-1 if reconnect else 0,
        dont_randomize=not reconnect,
        **options,
    )
    return conn


def run_once(servers: list[str], fn: Callable[[NATS], Awaitable[T]],
             timeout: float = PROBE_TIMEOUT) -> T:
    """Connect, run `fn(connection)`, close; the whole call bounded by `timeout` per server
    plus `timeout` for the work itself."""

    async def main() -> T:
        nc = await connect(servers, timeout=timeout)
        try:
            return await asyncio.wait_for(fn(nc), timeout)
        finally:
            await nc.close()

    return asyncio.run(main())


def stream_info(servers: list[str], name: str = STREAM,
                timeout: float = PROBE_TIMEOUT) -> StreamInfo:
    """The stream's info as its leader answers it (cluster leader, replicas, state)."""

    async def fn(nc: NATS) -> StreamInfo:
        return await nc.jetstream(timeout=timeout).stream_info(name)

    return run_once(servers, fn, timeout)


def ensure_stream(servers: list[str], spec: StreamSpec, timeout: float = 5.0) -> str:
    """Create the stream, or bring its replica count in line with `spec` (JetStream scales
    a stream up or down in place). Returns "created", "updated" or "unchanged"."""

    async def fn(nc: NATS) -> str:
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        js = nc.jetstream(timeout=timeout)
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(StreamConfig(
                name=spec.name, subjects=spec.subjects, storage=StorageType.FILE,
                num_replicas=spec.replicas))
            return "created"
        if info.config.num_replicas == spec.replicas:
            return "unchanged"
        info.config.num_replicas = spec.replicas
        await js.update_stream(info.config)
        return "updated"

    return run_once(servers, fn, timeout)


def monitor(port: int, path: str, timeout: float = PROBE_TIMEOUT) -> tuple[int, dict[str, Any]]:
    """GET http://127.0.0.1:<port><path> from a server's monitoring port: (status, JSON).
    /healthz answers 503 with a JSON body while unhealthy: that is an answer, not an error."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"{}")
        except ValueError:
            return exc.code, {"error": body.decode("utf-8", "replace")[:200]}


class LoopThread:
    """A private asyncio loop in a daemon thread, for a long-lived connection used from
    plain threads. `run` waits at most `timeout` and cancels the coroutine after that."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self.loop.close()

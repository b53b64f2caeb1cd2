"""Sequence-numbered JetStream publishes, classified the way Jepsen's history needs.

Each write publishes the workload sequence number (the payload) to the run's own subject
`drill.<scenario>.<random>` and waits for the stream's publish ack, once, with a short
timeout:
- an ack: ok, and the stream sequence it names is kept for the reconciliation check;
- not connected to any node, no responders (no stream leader took the message) or an
  error reply from the stream: the message certainly was not stored -> a plain exception;
- a timeout or a connection lost after sending: it may have been stored -> OpUnknown.
The connection lives on a private event loop (nats-py is asyncio; the engine calls
`write` from a plain thread) and follows the cluster when a node dies.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from drillrunner.core.actions import workload
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpUnknown
from drillrunner.services.nats import client
from drillrunner.services.nats.ops import nats_ops

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

READ_TIMEOUT = 5.0
RECONNECT_WAIT = 0.1  # between reconnect attempts to the next node (default 2 s)


@dataclass(frozen=True)
class StoredMessage:
    stream_seq: int
    workload_seq: int | None  # None if the payload is not a sequence number


@dataclass(frozen=True)
class StreamState:
    first_seq: int
    last_seq: int
    messages: int
    num_deleted: int

    @property
    def holes(self) -> int:
        """Sequences between first and last that hold no message."""
        if self.messages == 0:
            return 0
        return self.last_seq - self.first_seq + 1 - self.messages


def subject_token(text: str) -> str:
    """A subject token from free text (no dots, spaces or wildcards)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "_"


class JsPublish:
    """A WorkloadClient publishing one message per sequence number with acks."""

    def __init__(self, servers: list[str], subject: str, timeout: float,
                 stream: str = client.STREAM) -> None:
        self.subject = subject
        self.stream = stream
        self.timeout = timeout
        self._lock = threading.Lock()
        self._acks: dict[int, int] = {}  # workload seq -> acknowledged stream seq
        self._loop = client.LoopThread("nats-workload")
        try:
            self._nc: NATS = self._loop.run(client.connect(
                servers, timeout=timeout, reconnect=True, reconnect_time_wait=RECONNECT_WAIT,
                ping_interval=1, max_outstanding_pings=2,
            ), timeout * len(servers) + 2.0)
        except BaseException:
            self._loop.close()
            raise

    def acks(self) -> dict[int, int]:
        """Acknowledged workload seqs and the stream sequence each ack named."""
        with self._lock:
            return dict(self._acks)

    def write(self, seq: int) -> None:
        import nats.errors
        import nats.js.errors

        if not self._nc.is_connected:
            # nats-py would buffer the message and send it after reconnecting: refuse
            # instead, so a failed write certainly was not sent.
            raise ActionFailed("not connected to any NATS node (nothing sent)")
        js = self._nc.jetstream(timeout=self.timeout)
        try:
            ack = self._loop.run(js.publish(self.subject, str(seq).encode()),
                                 self.timeout + 1.0)
        except nats.js.errors.NoStreamResponseError:
            raise ActionFailed("no responders: no stream leader took the message") from None
        except nats.js.errors.APIError as exc:  # an error reply: the stream refused it
            raise ActionFailed(f"the stream refused the message: {exc}") from None
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise OpUnknown(f"{type(exc).__name__}: {exc}") from None
        with self._lock:
            self._acks[seq] = int(ack.seq)

    def read_stored(self, timeout: float = 15.0) -> list[StoredMessage]:
        """Every message of the run's subject in stream order, read back through an
        ephemeral ordered consumer (retried while the stream elects a leader)."""
        import nats.errors

        # A 1-tuple is truthy even when the subject holds no message.
        (found,) = poll_until(
            lambda: (self._loop.run(self._read_all(), READ_TIMEOUT * 20),),
            timeout=timeout, interval=0.2, what="the NATS stream to read back from",
            retry_on=(nats.errors.Error, TimeoutError, OSError),
        )
        return found

    async def _read_all(self) -> list[StoredMessage]:
        from nats.js.api import DeliverPolicy

        js = self._nc.jetstream(timeout=READ_TIMEOUT)
        info = await js.stream_info(self.stream, subjects_filter=self.subject)
        expected = (info.state.subjects or {}).get(self.subject, 0)
        found: list[StoredMessage] = []
        if expected:
            sub = await js.subscribe(self.subject, stream=self.stream, ordered_consumer=True,
                                     deliver_policy=DeliverPolicy.ALL)
            try:
                while True:
                    msg = await sub.next_msg(timeout=READ_TIMEOUT)
                    meta = msg.metadata
                    found.append(StoredMessage(meta.sequence.stream, _seq(msg.data)))
                    if meta.num_pending == 0:
                        break
            finally:
                await sub.unsubscribe()
        return found

    def stream_state(self) -> StreamState:
        """The whole stream's sequence range and message count, from its leader."""
        import nats.errors

        async def fetch() -> StreamState:
            info = await self._nc.jetstream(timeout=READ_TIMEOUT).stream_info(self.stream)
            st = info.state
            return StreamState(st.first_seq, st.last_seq, st.messages, st.num_deleted or 0)

        return poll_until(lambda: self._loop.run(fetch(), READ_TIMEOUT + 1.0), timeout=15.0,
                          interval=0.2, what="the NATS stream's state",
                          retry_on=(nats.errors.Error, TimeoutError, OSError))

    def read_back(self, seqs: Collection[int]) -> set[int]:
        """The workload seqs of `seqs` the stream holds now."""
        wanted = set(seqs)
        return {m.workload_seq for m in self.read_stored()
                if m.workload_seq is not None and m.workload_seq in wanted}

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a dead connection: nothing left to release
            self._loop.run(self._nc.close(), 5.0)
        self._loop.close()


def _seq(data: bytes) -> int | None:
    try:
        return int(data)
    except ValueError:
        return None


@workload("nats.js_publish")
def js_publish(ctx: RunContext, timeout: Duration = 0.5) -> JsPublish:
    """Publish the sequence number to drill.<scenario>.<random> and wait for the
    JetStream ack; `timeout` bounds each attempt (no retries). The random part keeps
    reruns on one stack apart."""
    from drillrunner.services.nats.topology import client_urls

    subject = f"{client.SUBJECT_PREFIX}.{subject_token(ctx.scenario)}.{uuid.uuid4().hex[:8]}"
    return JsPublish(client_urls(ctx.target, nats_ops(ctx.target)), subject, timeout)

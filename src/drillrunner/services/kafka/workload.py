"""Sequence-numbered produces to the drill partition, classified the way Jepsen's history needs.

Each operation produces one message (key `<run key>:<seq>`, value `<seq>`) and polls the
producer until its delivery report arrives or the per-op deadline passes:
- produce() itself refuses (queue full, unknown partition) or the broker rejects the
  message with a non-retriable error: certainly not written -> a plain exception;
- no delivery report before the deadline, a timeout, a retriable or fatal error: the
  message may have been appended -> OpUnknown;
- a delivery report with an offset: acknowledged (`acked[seq] = offset`).
With acks=all the producer is idempotent (retries never duplicate); with acks=1 it is not.
read_back consumes the partition from the offset it had when the workload started up to
the high watermark, with assign() (no consumer group), and keeps where each seq was found.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from enum import StrEnum
from typing import Any

from drillrunner.core.actions import workload
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import Recorder, RunContext
from drillrunner.engine.history import OpUnknown
from drillrunner.services.kafka.ops import kafka_ops

REPORT_GRACE = 0.5  # past message.timeout.ms, librdkafka's own timeout report is due
READ_TIMEOUT = 60.0


class Acks(StrEnum):
    ALL = "all"
    ONE = "1"


class SequencedProduces:
    """A WorkloadClient producing one message per sequence number."""

    def __init__(self, bootstrap: str, topic: str, partition: int, run_key: str,
                 acks: Acks, timeout: float, record: Recorder) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.partition = partition
        self.run_key = run_key
        self.acks = acks
        self.timeout = timeout
        self.record = record
        self.acked: dict[int, int] = {}  # seq -> offset in its delivery report
        self.found: dict[int, list[int]] = {}  # seq -> offsets where read_back found it
        self.start_offset = self._high_watermark()
        self._producer = self._make_producer()

    def _conf(self) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, "log_level": 0,
                "socket.connection.setup.timeout.ms": 1000,
                "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 500}

    def _make_producer(self) -> Any:
        from confluent_kafka import Producer

        ms = int(self.timeout * 1000)
        return Producer({
            **self._conf(),
            "acks": str(self.acks),
            "enable.idempotence": self.acks is Acks.ALL,
            "linger.ms": 0,
            "message.timeout.ms": ms,
            "request.timeout.ms": ms,
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 250,
        })

    def _high_watermark(self) -> int:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({**self._conf(), "group.id": f"drill-{self.run_key}",
                             "enable.auto.commit": False})
        try:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(self.topic, self.partition), timeout=10.0)
            return int(high)
        finally:
            consumer.close()

    def key(self, seq: int) -> bytes:
        return f"{self.run_key}:{seq}".encode()

    def write(self, seq: int) -> None:
        from confluent_kafka import KafkaException

        box: list[tuple[Any, int | None]] = []

        def delivered(err: Any, msg: Any) -> None:
            box.append((err, msg.offset() if msg is not None and err is None else None))

        try:
            self._producer.produce(self.topic, key=self.key(seq), value=str(seq).encode(),
                                   partition=self.partition, on_delivery=delivered)
        except (BufferError, KafkaException) as exc:  # refused before anything was sent
            raise ActionFailed(f"produce refused: {exc}") from None
        deadline = time.monotonic() + self.timeout + REPORT_GRACE
        while not box and (left := deadline - time.monotonic()) > 0:
            self._producer.poll(min(left, 0.1))  # returns as soon as a report is served
        if not box:
            raise OpUnknown(f"no delivery report within {self.timeout + REPORT_GRACE:g}s")
        err, offset = box[0]
        if err is None and offset is not None and offset >= 0:
            self.acked[seq] = offset
            return
        if err is None:
            raise OpUnknown(f"delivery report without an offset ({offset})")
        if err.fatal():
            # The idempotent producer cannot go on; a new one starts a fresh producer id.
            self._producer = self._make_producer()
            raise OpUnknown(f"fatal producer error: {err.str()}")
        if err.retriable() or err.code() < 0:  # timeouts and client-side transport errors
            raise OpUnknown(f"{err.name()}: {err.str()}")
        raise ActionFailed(f"the broker rejected the message: {err.name()}: {err.str()}")

    def read_back(self, seqs: Collection[int]) -> set[int]:
        """The seqs present in the partition now (from the workload's start offset to the
        high watermark); records duplicates and messages read as evidence."""
        from confluent_kafka import KafkaException

        if not seqs:
            return set()
        found = poll_until(lambda: self._read_all() or None, timeout=READ_TIMEOUT,
                           interval=0.5, what=f"reading {self.topic} back",
                           retry_on=(KafkaException, ActionFailed))
        self.found = found
        dupes = {s: len(offs) for s, offs in found.items() if len(offs) > 1}
        self.record("kafka.read_back", start_offset=self.start_offset,
                    messages=sum(len(o) for o in found.values()), distinct=len(found),
                    duplicates=len(dupes), duplicate_sample=dict(list(dupes.items())[:20]))
        wanted = set(seqs)
        return {s for s in found if s in wanted}

    def _read_all(self) -> dict[int, list[int]] | None:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({**self._conf(), "group.id": f"drill-{self.run_key}",
                             "enable.auto.commit": False, "fetch.wait.max.ms": 100})
        try:
            tp = TopicPartition(self.topic, self.partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=5.0)
            start = max(int(low), self.start_offset)
            found: dict[int, list[int]] = {}
            if start >= high:
                return found if high >= 0 else None
            consumer.assign([TopicPartition(self.topic, self.partition, start)])
            prefix = f"{self.run_key}:".encode()
            deadline = time.monotonic() + 30.0
            next_offset = start
            while next_offset < high:
                if time.monotonic() > deadline:
                    raise ActionFailed(f"read {next_offset - start} of {high - start} "
                                       "messages before the deadline")
                for msg in consumer.consume(num_messages=1000, timeout=0.5):
                    if msg.error() is not None:
                        continue  # partition EOF or a transient fetch error: read on
                    offset = int(msg.offset() or 0)
                    next_offset = max(next_offset, offset + 1)
                    key = msg.key() or b""
                    if isinstance(key, bytes) and key.startswith(prefix):
                        found.setdefault(int(key[len(prefix):]), []).append(offset)
            return found
        finally:
            consumer.close()

    def duplicates(self) -> dict[int, list[int]]:
        return {s: offs for s, offs in self.found.items() if len(offs) > 1}

    def close(self) -> None:
        self._producer.flush(1.0)


@workload("kafka.sequenced_produces")
def sequenced_produces(ctx: RunContext, acks: Acks = Acks.ALL,
                       timeout: Duration = 2.0) -> SequencedProduces:
    """Produce <scenario>-<random>:<seq> to the drill partition with `acks` (all: idempotent
    producer; 1: leader-only acknowledgement, no idempotence); `timeout` bounds each op
    (message.timeout.ms). The random part keeps reruns on one stack apart."""
    from drillrunner.services.kafka.topology import live_bootstrap

    ops = kafka_ops(ctx.target)
    run_key = f"{ctx.scenario}-{uuid.uuid4().hex[:8]}"
    return SequencedProduces(live_bootstrap(ctx.target, ops), ops.topic, ops.partition,
                             run_key, acks, timeout, ctx.record)


"""Thin helpers over confluent-kafka's AdminClient (imported lazily inside functions).

Every call builds a fresh client with explicit timeouts: librdkafka only routes requests to
brokers whose connection finished its handshake, so a fresh client never waits on a
SIGSTOPped broker (its kernel accepts the TCP connection, the JVM never answers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ADMIN_TIMEOUT = 3.0


@dataclass(frozen=True)
class PartitionState:
    """A partition as the cluster's metadata shows it; leader None when it has none."""

    leader: int | None
    replicas: list[int]
    isr: list[int]


@dataclass(frozen=True)
class ClusterMetadata:
    brokers: dict[int, tuple[str, int]]  # registered, unfenced brokers: id -> address
    partition: PartitionState | None  # None when the topic does not exist


def admin(bootstrap: str, timeout: float = ADMIN_TIMEOUT) -> Any:
    from confluent_kafka.admin import AdminClient

    ms = str(int(timeout * 1000))
    return AdminClient({
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": ms,
        "socket.connection.setup.timeout.ms": ms,
        "log_level": 0,  # connection errors to a killed broker are expected in a drill
    })


def metadata(bootstrap: str, topic: str, partition: int,
             timeout: float = ADMIN_TIMEOUT) -> ClusterMetadata:
    """Brokers and the partition's leader / replicas / ISR from a Metadata request."""
    md = admin(bootstrap, timeout).list_topics(timeout=timeout)
    brokers = {b.id: (b.host, b.port) for b in md.brokers.values()}
    t = md.topics.get(topic)
    if t is None or t.error is not None or partition not in t.partitions:
        return ClusterMetadata(brokers, None)
    p = t.partitions[partition]
    leader = p.leader if p.leader >= 0 else None
    return ClusterMetadata(brokers, PartitionState(leader, list(p.replicas), list(p.isrs)))


def topic_config(bootstrap: str, topic: str, names: list[str],
                 timeout: float = ADMIN_TIMEOUT) -> dict[str, str]:
    from confluent_kafka.admin._config import ConfigResource
    from confluent_kafka.admin._resource import ResourceType

    res = ConfigResource(ResourceType.TOPIC, topic)
    adm = admin(bootstrap, timeout)  # kept alive until the future resolves
    entries = adm.describe_configs([res], request_timeout=timeout)[res].result(timeout)
    return {n: str(entries[n].value) for n in names if n in entries}


def create_topic(bootstrap: str, topic: str, replication: int, config: dict[str, str],
                 timeout: float = 10.0) -> None:
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.cimpl import NewTopic

    adm = admin(bootstrap, timeout)  # kept alive until the future resolves
    fut = adm.create_topics(
        [NewTopic(topic, 1, replication, config=config)], operation_timeout=timeout,
        request_timeout=timeout)[topic]
    try:
        fut.result(timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


def set_topic_config(bootstrap: str, topic: str, config: dict[str, str],
                     timeout: float = 10.0) -> None:
    from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
    from confluent_kafka.admin._resource import ResourceType

    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
               for k, v in config.items()]
    res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    adm = admin(bootstrap, timeout)  # kept alive until the future resolves
    adm.incremental_alter_configs([res], request_timeout=timeout)[res].result(timeout)

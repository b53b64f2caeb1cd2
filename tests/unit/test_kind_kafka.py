"""KindKafkaOps against the fake Kubernetes API: addresses, node ids, the KRaft quorum state
read in the pods, the topic settings, and the Kafka driver's pause / resume on kind."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import (
    V1Container,
    V1ContainerPort,
    V1EnvVar,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodSpec,
    V1PodTemplateSpec,
    V1StatefulSet,
    V1StatefulSetSpec,
)

from drillrunner.core.actions import Catalog
from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
from drillrunner.services.kafka import client
from drillrunner.services.kafka import kind as kind_kafka
from drillrunner.services.kafka.client import ClusterMetadata, PartitionState
from drillrunner.services.kafka.kind import FixedPortForwarder, KindKafkaOps
from drillrunner.services.kafka.ops import KafkaOps, QuorumView, kafka_ops
from drillrunner.services.kafka.topology import active_controller, is_stopped, readiness
from drillrunner.services.registry import REGISTRY
from drillrunner.targets.kind.target import KindTarget
from tests.unit.kind_fakes import ADAPTERS, STACK, Cluster, apis, pod

MANIFEST = Path(__file__).parents[2] / "deploy" / "k8s" / "kafka" / "kafka.yaml"
LABELS = {**STACK, "app.kubernetes.io/name": "kafka", "drill.dev/member-kind": "server"}


def statefulset(replicas: int = 3, min_isr: str | None = "2") -> V1StatefulSet:
    env = [V1EnvVar(name="KAFKA_MIN_INSYNC_REPLICAS", value=min_isr)] if min_isr else []
    tmpl = V1PodTemplateSpec(metadata=V1ObjectMeta(labels=LABELS), spec=V1PodSpec(
        containers=[V1Container(name="kafka", env=env,
                                ports=[V1ContainerPort(container_port=9092)])]))
    return V1StatefulSet(
        metadata=V1ObjectMeta(name="kafka", labels=LABELS),
        spec=V1StatefulSetSpec(replicas=replicas, service_name="kafka-headless",
                               selector=V1LabelSelector(match_labels={"a": "b"}),
                               template=tmpl))


class Pods:
    """The exec side of the kafka pods: each node's quorum-state file (None: absent)."""

    def __init__(self) -> None:
        self.quorum: dict[str, str | None] = {}
        self.execs: list[tuple[str, list[str]]] = []

    def __call__(self, pod_name: str, container: str, argv: list[str],
                 stdin: str | None) -> tuple[int, str, str]:
        self.execs.append((pod_name, argv))
        assert container == "kafka"
        if argv == ["sh", "-c", f"base64 < {kind_kafka.QUORUM_STATE}"]:
            text = self.quorum.get(pod_name)
            if text is None:
                return 1, "", f"sh: can't open '{kind_kafka.QUORUM_STATE}': No such file"
            return 0, base64.b64encode(text.encode()).decode() + "\n", ""
        return 127, "", f"unexpected command {argv}"


def state(leader: int, epoch: int) -> str:
    return json.dumps({"clusterId": "", "leaderId": leader, "leaderEpoch": epoch,
                       "votedId": -1, "appliedOffset": 0, "currentVoters": [],
                       "data_version": 0})


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster()
    for i in range(3):
        p = pod(f"kafka-{i}", "kafka", port=9092, node=f"drill-worker{i + 1}")
        c.pods[p.metadata.name] = p
    c.statefulsets.append(statefulset())
    return c


@pytest.fixture
def pods() -> Pods:
    p = Pods()
    p.quorum = {"kafka-0": state(1, 4), "kafka-1": state(1, 4), "kafka-2": state(1, 4)}
    return p


def make(c: Cluster, tmp_path: Path, handler: Any = None, **kw: Any) -> KindTarget:
    kw.setdefault("forward", False)
    return KindTarget(apis(c, handler), adapters=ADAPTERS, context="kind-drill", state=tmp_path,
                      **kw)


def ops_of(t: KindTarget) -> KindKafkaOps:
    ops = kafka_ops(t)  # through the target's adapters, as the driver does
    assert isinstance(ops, KindKafkaOps)
    return ops


def test_protocol_node_ids_and_in_cluster_addresses(cluster: Cluster, tmp_path: Path) -> None:
    del cluster.pods["kafka-2"]  # a StatefulSet ordinal without a pod is still a broker
    ops = ops_of(make(cluster, tmp_path))
    assert isinstance(ops, KafkaOps)
    assert (ops.topic, ops.partition) == ("drill", 0)
    assert [(b.name, b.host, b.port) for b in ops.brokers()] == [
        (f"kafka-{i}", f"kafka-{i}.kafka-headless.drill.svc.cluster.local", 9092)
        for i in range(3)]
    assert [ops.node_id(b.name) for b in ops.brokers()] == [0, 1, 2]
    assert ops.bootstrap().split(",")[1] == "kafka-1.kafka-headless.drill.svc.cluster.local:9092"
    with pytest.raises(StackError, match="no member 'redis-0'"):
        ops.node_id("redis-0")


def test_min_insync_replicas_from_the_statefulset(cluster: Cluster, tmp_path: Path) -> None:
    ops = ops_of(make(cluster, tmp_path))
    assert ops.min_insync_replicas == 2
    cluster.statefulsets[:] = [statefulset(min_isr="3")]
    assert ops.min_insync_replicas == 3
    cluster.statefulsets[:] = [statefulset(min_isr=None)]
    assert ops.min_insync_replicas == 2  # the broker default of the manifests
    cluster.statefulsets.clear()
    assert ops.min_insync_replicas == 2


def test_quorum_view_is_read_in_the_pod(cluster: Cluster, pods: Pods,
                                        tmp_path: Path) -> None:
    pods.quorum["kafka-2"] = None  # not elected yet: no file
    ops = ops_of(make(cluster, tmp_path, pods))
    assert ops.quorum_view("kafka-0") == QuorumView(leader_id=1, leader_epoch=4)
    assert ops.quorum_view("kafka-2") is None
    pods.quorum["kafka-2"] = '{"leaderId": 1, "leade'  # caught mid-rewrite
    assert ops.quorum_view("kafka-2") is None
    del cluster.pods["kafka-2"]  # pod gone: no view, no exec, no error
    assert ops.quorum_view("kafka-2") is None
    assert ("kafka-2", ["sh", "-c", f"base64 < {kind_kafka.QUORUM_STATE}"]) in pods.execs
    with pytest.raises(StackError):
        ops.quorum_view("nats-0")


def test_active_controller_on_kind(cluster: Cluster, pods: Pods, tmp_path: Path) -> None:
    t = make(cluster, tmp_path, pods)
    ops = ops_of(t)
    leader = active_controller(t, ops)
    assert leader is not None and leader.name == "kafka-1"
    pods.quorum = {"kafka-0": state(-1, 5), "kafka-1": state(1, 4), "kafka-2": state(-1, 5)}
    assert active_controller(t, ops) is None  # an election is open in epoch 5


class FakeMetadata:
    """client.metadata answering from a fixed cluster; remembers each bootstrap asked."""

    def __init__(self, leader: int | None = 1, isr: tuple[int, ...] = (0, 1, 2)) -> None:
        self.state = PartitionState(leader, [0, 1, 2], list(isr))
        self.seen: list[str] = []

    def __call__(self, bootstrap: str, topic: str, partition: int,
                 timeout: float = 3.0) -> ClusterMetadata:
        self.seen.append(bootstrap)
        return ClusterMetadata({i: ("127.0.0.1", 19092 + i) for i in range(3)}, self.state)


def test_paused_member_is_seen_and_resumed_on_kind(
        cluster: Cluster, pods: Pods, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kind pauses by isolating the pod (no PID to SIGSTOP): the driver must see it as
    paused, keep it out of its bootstrap, and its undo must remove the isolation, twice."""
    metadata = FakeMetadata()
    monkeypatch.setattr(client, "metadata", metadata)
    t = make(cluster, tmp_path, pods)
    ops = ops_of(t)
    assert readiness(t, ops).ready
    catalog = Catalog.load(["drillrunner.services.kafka"])
    undos: list[tuple[str, dict[str, Any]]] = []
    ctx = RunContext(target=t, scenario="s", history=History(), record=lambda *a, **k: None,
                     _undo_sink=lambda name, args: undos.append((name, args)))
    fault = catalog.get("kafka.pause_member")
    assert fault is not None
    result = fault.call(ctx, fault.bind({"member": "kafka-2"}))
    assert result.detail == {"role": "follower"}
    assert undos == [("kafka.resume_member", {"member": "kafka-2"})]
    assert "drill-isolate-kafka-2" in cluster.policies
    assert is_stopped(t, t.member("kafka", "kafka-2"))
    r = readiness(t, ops)
    assert r.problems == ["kafka-2 is paused"]
    assert metadata.seen[-1].split(",") == [  # only the live brokers bootstrap
        "kafka-0.kafka-headless.drill.svc.cluster.local:9092",
        "kafka-1.kafka-headless.drill.svc.cluster.local:9092"]
    undo = catalog.get(undos[0][0])
    assert undo is not None
    for _ in range(2):  # the undo is idempotent
        undo.call(ctx, undo.bind(undos[0][1]))
    assert cluster.policies == {}
    assert readiness(t, ops).ready


def test_host_addresses_are_the_advertised_ports(cluster: Cluster, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With port-forwarding each broker is bound at 127.0.0.1:<base + ordinal>, exactly
    what its EXTERNAL listener advertises, forwarding to the pod's EXTERNAL port."""
    for name in ("kafka-1", "kafka-2"):
        del cluster.pods[name]
    cluster.statefulsets[:] = [statefulset(replicas=1)]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
    monkeypatch.setattr(kind_kafka, "HOST_BASE_PORT", base)
    t = make(cluster, tmp_path, forward=True)
    ops = ops_of(t)
    try:
        assert [(b.name, b.host, b.port) for b in ops.brokers()] == [("kafka-0", "127.0.0.1",
                                                                      base)]
        assert ops.brokers()[0].port == base  # bound once, stable
        assert ops.bootstrap() == f"127.0.0.1:{base}"
        assert ops._external is not None
        assert list(ops._external._listeners) == [("kafka-0", kind_kafka.EXTERNAL_PORT)]
        with socket.create_connection(("127.0.0.1", base), timeout=2):
            pass  # something listens there (the forward itself needs a real API server)
    finally:
        ops.close()
        ops.close()  # idempotent
        t.close()


def test_a_taken_advertised_port_is_a_clear_error(cluster: Cluster, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        fw = FixedPortForwarder(object(), "drill")
        with pytest.raises(ActionFailed, match=rf"kafka-0: cannot listen on 127.0.0.1:{port}"):
            fw.bind("kafka-0", 9094, port)
        fw.close()


def test_manifest_matches_this_module() -> None:
    """The manifest advertises what brokers() binds and keeps the log dir quorum_view reads."""
    sts = next(d for d in yaml.safe_load_all(MANIFEST.read_text())
               if d and d["kind"] == "StatefulSet")
    c = sts["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    script = c["command"][-1]
    assert f"EXTERNAL://127.0.0.1:$(({kind_kafka.HOST_BASE_PORT} + KAFKA_NODE_ID))" in script
    assert 'KAFKA_NODE_ID="${HOSTNAME##*-}"' in script
    assert f"EXTERNAL://:{kind_kafka.EXTERNAL_PORT}" in env["KAFKA_LISTENERS"]
    assert "EXTERNAL:PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert env["KAFKA_LOG_DIRS"] == kind_kafka.LOG_DIR
    assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert {p["containerPort"] for p in c["ports"]} == {9092, 9093, kind_kafka.EXTERNAL_PORT}
    assert c["ports"][0]["containerPort"] == 9092  # the members' own address stays :9092


def test_ensure_topic_creates_then_aligns(cluster: Cluster, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Any]] = []
    have: dict[str, str] | None = None

    def topic_config(bootstrap: str, topic: str, names: list[str]) -> dict[str, str]:
        if have is None:
            raise RuntimeError("UNKNOWN_TOPIC_OR_PART")
        return have

    monkeypatch.setattr(client, "topic_config", topic_config)
    monkeypatch.setattr(client, "create_topic", lambda b, t, rf, cfg: calls.append(
        ("create", (b, t, rf, cfg))))
    monkeypatch.setattr(client, "set_topic_config", lambda b, t, cfg: calls.append(
        ("set", cfg)))
    ops = ops_of(make(cluster, tmp_path))
    assert ops.prepare() == ["kafka topic drill created or updated"]
    bootstrap, topic, rf, cfg = calls[0][1]
    assert (topic, rf) == ("drill", 3) and bootstrap.count("kafka-headless") == 3
    assert cfg == {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
    have = {"min.insync.replicas": "1", "unclean.leader.election.enable": "false"}
    assert ops.ensure_topic() is True
    assert calls[-1] == ("set", {"min.insync.replicas": "2"})
    have = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
    assert ops.ensure_topic() is False
    assert len(calls) == 2


def test_registered_for_the_kind_target() -> None:
    assert REGISTRY.adapters("kind")["kafka"] == "drillrunner.services.kafka.kind:KindKafkaOps"


def test_manifest_cluster_id_is_what_kafka_storage_format_accepts() -> None:
    """kafka-storage format (the image's entrypoint) parses CLUSTER_ID as Uuid.fromString:
    base64url that decodes to exactly 16 bytes; anything else crash-loops every broker."""
    import base64

    import yaml

    path = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "kafka" / "kafka.yaml"
    sts = next(d for d in yaml.safe_load_all(path.read_text()) if d["kind"] == "StatefulSet")
    env = {e["name"]: e.get("value") for e in sts["spec"]["template"]["spec"]["containers"][0]
           ["env"]}
    cid = env["CLUSTER_ID"]
    assert len(cid) == 22 and "=" not in cid
    assert len(base64.urlsafe_b64decode(cid + "==")) == 16

"""KafkaOps on kind: StatefulSet `kafka` of deploy/k8s/kafka, three combined broker +
controller KRaft nodes; node id = the pod's ordinal (`KAFKA_NODE_ID=${HOSTNAME##*-}`).

Addresses from the host. A Kafka client uses its bootstrap address for the first Metadata
request only; then it connects to the addresses the brokers *advertise*. The in-cluster
listener (PLAINTEXT :9092) advertises `kafka-N.kafka-headless.drill.svc.cluster.local`,
which the host cannot resolve, so a port-forward to one broker is not enough. Each broker
therefore has a second listener, EXTERNAL on :9094, advertised as 127.0.0.1:<19092 + N>,
and this module binds exactly that host port to a port-forward to kafka-N:9094 (through the
API server, like every member address of the kind target). A client bootstrapped on any of
them is told addresses leading back to the right broker, whichever broker leads. The
port-forward reaches the pod on its loopback, so no NetworkPolicy admits or blocks it. The
host ports are fixed by the manifest: if one is taken (e.g. a second drill on another
cluster at the same time) brokers() fails naming it, rather than reaching the wrong broker.
With forward=False (in-cluster use, unit tests) brokers are the headless names on :9092.

Quorum state: read from `<log dir>/__cluster_metadata-0/quorum-state` in the pod by exec.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.services.kafka import client
from drillrunner.services.kafka.ops import QuorumView
from drillrunner.services.kafka.topology import REPLICATION
from drillrunner.targets.base import MemberRef
from drillrunner.targets.kind.apis import http_status
from drillrunner.targets.kind.deployments import KindDeployment
from drillrunner.targets.kind.forward import PortForwarder
from drillrunner.targets.pods import KindPods

TOPIC = "drill"  # as on the local stack: one partition, replication factor 3
STATEFULSET = "kafka"
HEADLESS = "kafka-headless"
BROKER_PORT = 9092  # PLAINTEXT: in-cluster clients and inter-broker traffic
EXTERNAL_PORT = 9094  # EXTERNAL: the host's clients, through port-forwards
HOST_BASE_PORT = 19092  # broker N advertises EXTERNAL://127.0.0.1:(HOST_BASE_PORT + N)
LOG_DIR = "/var/lib/kafka/data/logs"  # KAFKA_LOG_DIRS in the manifest
QUORUM_STATE = f"{LOG_DIR}/__cluster_metadata-0/quorum-state"
MIN_ISR_ENV = "KAFKA_MIN_INSYNC_REPLICAS"
DEFAULT_MIN_ISR = 2
QUORUM_READ_TIMEOUT = 10.0
_NAME = re.compile(r"^kafka-(\d+)$")


class FixedPortForwarder(PortForwarder):
    """A PortForwarder whose listeners bind given local ports (the advertised ones)."""

    def bind(self, pod: str, port: int, local_port: int) -> int:
        try:
            return self.local_port(pod, port, bind_to=local_port)
        except OSError as exc:
            raise ActionFailed(
                f"{pod}: cannot listen on 127.0.0.1:{local_port}, the address its "
                f"EXTERNAL listener advertises ({exc.strerror}): another drill on a "
                "kind cluster, or another program, holds that port") from None



class KindKafkaOps(KindDeployment):
    """The driver's KafkaOps on the kind target (see the module docstring)."""

    topic = TOPIC
    partition = 0

    def __init__(self, target: KindPods, service: str) -> None:
        super().__init__(target, service)
        self._external: FixedPortForwarder | None = None
        self._guard = threading.Lock()

    def close(self) -> None:
        """Release the fixed host ports (the target's own forwarder closes with it)."""
        with self._guard:
            if self._external is not None:
                self._external.close()
                self._external = None

    # -- addresses ----------------------------------------------------------------------

    def _forwarding(self) -> bool:
        return self.target.forwarder() is not None  # the target reaches pods from the host

    def _external_forwarder(self) -> FixedPortForwarder:
        with self._guard:
            if self._external is None:
                self._external = FixedPortForwarder(self.target.apis.core,
                                                    self.target.namespace)
            return self._external

    def node_id(self, name: str) -> int:
        found = _NAME.match(name)
        if found is None:
            raise StackError(f"kafka has no member {name!r}")
        return int(found.group(1))

    def brokers(self) -> list[MemberRef]:
        """Every node (pods and StatefulSet ordinals without a pod), addressed by the
        listener a client here can follow: EXTERNAL through its fixed host port."""
        out = []
        for m in self.members():
            node = self.node_id(m.name)
            if self._forwarding():
                host = "127.0.0.1"
                port = self._external_forwarder().bind(m.name, EXTERNAL_PORT,
                                                       HOST_BASE_PORT + node)
            else:
                host = f"{m.name}.{HEADLESS}.{self.target.namespace}.svc.cluster.local"
                port = BROKER_PORT
            out.append(MemberRef(service=self.service, name=m.name, host=host, port=port,
                                 kind=m.kind))
        return out

    def bootstrap(self) -> str:
        return ",".join(f"{b.host}:{b.port}" for b in self.brokers())

    @property
    def min_insync_replicas(self) -> int:
        """KAFKA_MIN_INSYNC_REPLICAS of the StatefulSet (the stack's setting), default 2."""
        try:
            sts = self.target.apis.apps.read_namespaced_stateful_set(STATEFULSET,
                                                                     self.target.namespace)
        except Exception as exc:
            if http_status(exc) == 404:
                return DEFAULT_MIN_ISR
            raise
        for c in sts.spec.template.spec.containers:
            for e in c.env or []:
                if e.name == MIN_ISR_ENV and e.value:
                    return int(e.value)
        return DEFAULT_MIN_ISR

    # -- Raft state ---------------------------------------------------------------------

    def quorum_view(self, name: str) -> QuorumView | None:
        """The node's persisted KRaft election state, read in its pod. None when it cannot
        be read now (no pod, container restarting, not elected yet, mid-rewrite): the
        driver asks again, as it does locally for a missing file."""
        self.node_id(name)
        ref = MemberRef(service=self.service, name=name, host=name, port=BROKER_PORT)
        try:
            data = self.target.read_file(ref, QUORUM_STATE, timeout=QUORUM_READ_TIMEOUT)
            raw: Any = json.loads(data)
            return QuorumView(leader_id=int(raw.get("leaderId", -1)),
                              leader_epoch=int(raw.get("leaderEpoch", -1)))
        except (ActionFailed, ValueError, AttributeError):
            return None
        except Exception as exc:
            if http_status(exc) is not None:  # the API refused the exec (pod going away)
                return None
            raise

    # -- topic --------------------------------------------------------------------------

    def ensure_topic(self) -> bool:
        """Create the drill topic (1 partition, RF 3) or bring its config in line; True if
        anything changed. As on the local stack (there, `up` calls it)."""
        want = {"min.insync.replicas": str(self.min_insync_replicas),
                "unclean.leader.election.enable": "false"}
        bootstrap = self.bootstrap()
        try:
            have = client.topic_config(bootstrap, self.topic, list(want))
        except Exception:
            have = None
        if have is None:
            client.create_topic(bootstrap, self.topic, REPLICATION, want)
            return True
        changed = {k: v for k, v in want.items() if have.get(k) != v}
        if changed:
            client.set_topic_config(bootstrap, self.topic, changed)
        return bool(changed)

    def prepare(self) -> list[str]:
        """What `drill cluster up` should run once the pods are ready: the drill topic."""
        changed = self.ensure_topic()
        return [f"kafka topic {self.topic} {'created or updated' if changed else 'ok'}"]

"""Kafka on the local target: a 3-node KRaft quorum of combined broker + controller nodes.

Apache Kafka is not packaged for PyPI or Debian: its jars come from Maven Central through
`kafka_pom.xml` beside this file, fetched once into a cache outside the state folder (it
survives `drill stack down` and is shared by every stack):

    python -m drillrunner.services.kafka.local fetch     # needs java and maven

Layout: `<state>/kafka/cluster.id`; `<state>/kafka/<member>/` holds `node.properties`,
`<member>.log` and `data/` (the log dir, with `__cluster_metadata-0/quorum-state`, the
node's persisted Raft election state). Node `kafka-N` has node.id N+1, its client listener
on settings.port("kafka-N") and its controller listener on settings.port("kafka-N-controller").

Timeouts, fast but realistic on loopback (defaults in brackets):
- broker.session.timeout.ms 3000 [9000], broker.heartbeat.interval.ms 500 [2000]: the
  controller fences a dead broker 3 s after its last heartbeat, which is what moves
  partition leadership away from it;
- replica.lag.time.max.ms 5000 [30000]: a follower that stopped fetching leaves the ISR
  after 5 s (with min.insync.replicas 2 an acks=all producer stalls until then);
- controller.quorum.election.timeout.ms 1000 and fetch.timeout.ms 2000: the defaults.
Heaps are 256 MB with C1-only JIT and the serial collector: JVM start is CPU-bound on
2 cores. Measured here: a fresh quorum (format + 3 JVMs + topic with a full ISR) in 15-26 s,
a restarted node back in the ISR in 3-17 s; ~340 MB RSS per node. `down` TERMs every node
at once (6 s; one by one, the last node waits 40 s for a quorum it no longer has).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from drillrunner.core.errors import MissingBinary, StackError
from drillrunner.services.kafka import client
from drillrunner.services.kafka.ops import QuorumView
from drillrunner.services.kafka.spec import KafkaSettings
from drillrunner.services.kafka.topology import REPLICATION, wait_ready
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor

KAFKA_VERSION = "4.1.1"
NODES = ("kafka-0", "kafka-1", "kafka-2")
TOPIC = "drill"
READY_TIMEOUT = 120.0  # three JVMs starting at once on 2 cores take ~20 s
FORMAT_TIMEOUT = 60.0
POM = Path(__file__).with_name("kafka_pom.xml")
INSTALL_JAVA = "java not found: install openjdk-17-jre-headless " \
               "(apt-get install openjdk-17-jre-headless)"
JVM_OPTS = (
    "-Xms256m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSS",
)
TOOL_JVM_OPTS = ("-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")


def cache_dir() -> Path:
    """Where fetched jars live: $DRILL_CACHE_DIR, else $XDG_CACHE_HOME/drillrunner, else
    ~/.cache/drillrunner. Outside any state folder, so it survives `drill stack down`."""
    env = os.environ.get("DRILL_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "drillrunner"


def lib_dir() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}" / "lib"


def _complete_marker() -> Path:
    return lib_dir() / ".complete"


def fetch_command() -> str:
    return f"{sys.executable} -m drillrunner.services.kafka.local fetch"


def java_binary() -> str:
    found = shutil.which("java")
    if found is None:
        raise MissingBinary(INSTALL_JAVA)
    return found


def check_jars() -> Path:
    if not _complete_marker().exists():
        raise MissingBinary(
            f"the Apache Kafka {KAFKA_VERSION} jars are not in {lib_dir()}: fetch them from "
            f"Maven Central with '{fetch_command()}' (needs Maven: apt-get install maven)")
    return lib_dir()


def fetch(*, quiet: bool = True) -> Path:
    """Download the broker's jars with Maven into lib_dir() (idempotent; atomic rename)."""
    if _complete_marker().exists():
        return lib_dir()
    java_binary()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingBinary("mvn not found: install Maven (apt-get install maven)")
    final = lib_dir()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="lib-", dir=final.parent))
    try:
        argv = [mvn, "-B", *(["-q"] if quiet else []), "-f", str(POM),
                f"-Dkafka.version={KAFKA_VERSION}", "dependency:copy-dependencies",
                "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StackError(f"Maven could not fetch the Kafka jars (exit {done.returncode}):\n"
                             f"{(done.stdout + done.stderr)[-2000:]}")
        (tmp / ".complete").write_text(f"kafka_2.13 {KAFKA_VERSION}\n")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def random_cluster_id() -> str:
    """A Kafka cluster id: a random UUID, base64url without padding (as StorageTool's
    random-uuid, without its 1.5 s JVM start); Kafka rejects ids starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class KafkaDeployment:
    """The Kafka tier of the local stack; also the driver's `KafkaOps` on this target."""

    service = "kafka"
    topic = TOPIC
    partition = 0

    def __init__(self, settings: StackSettings, state: Path, sup: Supervisor) -> None:
        self.settings = settings
        self.root = state / "kafka"
        self.sup = sup

    # -- layout ---------------------------------------------------------------------------

    def members(self) -> list[MemberRef]:
        return self.brokers()

    def brokers(self) -> list[MemberRef]:
        return [MemberRef(service=self.service, name=n, host="127.0.0.1",
                          port=self.settings.port(n), kind="node") for n in NODES]

    def node_id(self, name: str) -> int:
        if name not in NODES:
            raise StackError(f"kafka has no member {name!r}")
        return NODES.index(name) + 1

    def bootstrap(self) -> str:
        return ",".join(f"{b.host}:{b.port}" for b in self.brokers())

    @property
    def min_insync_replicas(self) -> int:
        return self.settings.of(KafkaSettings).min_insync_replicas

    def pid(self, member: MemberRef) -> int | None:
        return self.sup.pid(member.name)

    def is_running(self, member: MemberRef) -> bool:
        return self.sup.pid(member.name) is not None

    def member_dir(self, name: str) -> Path:
        return self.root / name

    def data_dir(self, name: str) -> Path:
        return self.member_dir(name) / "data"

    def conf_path(self, name: str) -> Path:
        return self.member_dir(name) / "node.properties"

    def config_files(self, name: str) -> list[Path]:
        return [self.conf_path(name)]

    def spec(self, name: str) -> ProcessSpec:
        self.node_id(name)
        return ProcessSpec(
            name=name,
            argv=[java_binary(), *JVM_OPTS, "-cp", f"{check_jars()}/*", "kafka.Kafka",
                  str(self.conf_path(name).resolve())],
            # The controller listener opens before the quorum forms; the client listener
            # only once this node's broker has caught up with a quorum of its peers, so
            # waiting for the client port of the first node would wait for the others.
            port=self.settings.port(f"{name}-controller"),
            log=self.member_dir(name) / f"{name}.log",
            cwd=self.member_dir(name),
        )

    def check_binaries(self) -> None:
        java_binary()
        check_jars()

    def versions(self) -> dict[str, str]:
        return {"kafka": KAFKA_VERSION, "kafka_lib": str(lib_dir())}

    # -- configuration --------------------------------------------------------------------

    def _voters(self) -> str:
        return ",".join(f"{self.node_id(n)}@127.0.0.1:{self.settings.port(f'{n}-controller')}"
                        for n in NODES)

    def write_config(self, name: str) -> None:
        port, cport = self.settings.port(name), self.settings.port(f"{name}-controller")
        self.data_dir(name).mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id(name)),
            "controller.quorum.voters": self._voters(),
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir(name).resolve()),
            "num.partitions": "1",
            "default.replication.factor": str(REPLICATION),
            "min.insync.replicas": str(self.min_insync_replicas),
            "unclean.leader.election.enable": "false",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": str(REPLICATION),
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": str(REPLICATION),
            "transaction.state.log.min.isr": "2",
            "transaction.state.log.num.partitions": "3",
            "group.initial.rebalance.delay.ms": "0",
            "broker.session.timeout.ms": "3000",
            "broker.heartbeat.interval.ms": "500",
            "controller.quorum.election.timeout.ms": "1000",
            "controller.quorum.fetch.timeout.ms": "2000",
            "replica.lag.time.max.ms": "5000",
            # Few threads: three nodes share 2 cores with the rest of the stack.
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "num.replica.fetchers": "1",
            "log.cleaner.threads": "1",
        }
        text = "# written by drill\n" + "".join(f"{k}={v}\n" for k, v in props.items())
        self.conf_path(name).write_text(text)

    def cluster_id(self) -> str:
        path = self.root / "cluster.id"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            path.write_text(random_cluster_id() + "\n")
        return path.read_text().strip()

    def is_formatted(self, name: str) -> bool:
        return (self.data_dir(name) / "meta.properties").exists()

    def format(self, names: list[str]) -> None:
        """Format the log dirs of `names` with the cluster id, in parallel (a JVM each)."""
        cid = self.cluster_id()
        procs = {
            n: subprocess.Popen(
                [java_binary(), *TOOL_JVM_OPTS, "-cp", f"{check_jars()}/*",
                 "kafka.tools.StorageTool", "format", "-t", cid, "-c", str(self.conf_path(n))],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for n in names
        }
        failed = []
        for n, proc in procs.items():
            out, _ = proc.communicate(timeout=FORMAT_TIMEOUT)
            if proc.returncode != 0:
                failed.append(f"{n}: {out.strip()[-500:]}")
        if failed:
            raise StackError("kafka-storage format failed: " + "; ".join(failed))

    def quorum_view(self, name: str) -> QuorumView | None:
        path = self.data_dir(name) / "__cluster_metadata-0" / "quorum-state"
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None  # not elected yet, or caught mid-rewrite: ask again
        return QuorumView(leader_id=int(raw.get("leaderId", -1)),
                          leader_epoch=int(raw.get("leaderEpoch", -1)))

    def ensure_topic(self) -> bool:
        """Create the drill topic (1 partition, RF 3) or bring min.insync.replicas in line."""
        want = {"min.insync.replicas": str(self.min_insync_replicas),
                "unclean.leader.election.enable": "false"}
        try:
            have = client.topic_config(self.bootstrap(), self.topic, list(want))
        except Exception:
            have = None
        if have is None:
            client.create_topic(self.bootstrap(), self.topic, REPLICATION, want)
            return True
        changed = {k: v for k, v in want.items() if have.get(k) != v}
        if changed:
            client.set_topic_config(self.bootstrap(), self.topic, changed)
        return bool(changed)

    # -- lifecycle ------------------------------------------------------------------------

    def up(self) -> None:
        self.check_binaries()
        for name in NODES:  # written every time: ports or settings may have changed
            self.write_config(name)
        unformatted = [n for n in NODES if not self.is_formatted(n)]
        if unformatted:
            self.format(unformatted)
        for name in NODES:
            if self.sup.pid(name) is None:
                self.sup.start(self.spec(name), ready_timeout=READY_TIMEOUT)
        self._wait_brokers()
        self.ensure_topic()
        wait_ready(self, self, timeout=READY_TIMEOUT)

    def _wait_brokers(self) -> None:
        from drillrunner.core.waiting import poll_until

        poll_until(lambda: len(client.metadata(self.bootstrap(), self.topic, 0).brokers)
                   == len(NODES), timeout=READY_TIMEOUT, interval=0.2,
                   what="all Kafka brokers to register", retry_on=(Exception,))

    def down(self) -> None:
        # TERM every node at once: a node stopped alone after its peers cannot finish its
        # controlled shutdown without a controller quorum and hangs until KILLed
        # (measured: 40 s one by one, 6 s together).
        for name in NODES:
            if self.sup.pid(name) is not None:
                if self.sup.is_paused(name):
                    self.sup.signal_group(name, signal.SIGCONT)
                self.sup.signal_group(name, signal.SIGTERM)
        for name in NODES:
            self.sup.stop(name, timeout=30.0)


def main(argv: list[str]) -> int:
    if argv[:1] != ["fetch"]:
        print("usage: python -m drillrunner.services.kafka.local fetch", file=sys.stderr)
        return 2
    try:
        path = fetch(quiet="--verbose" not in argv)
    except (MissingBinary, StackError) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""KindNatsOps against the fake Kubernetes API: addresses, the JetStream store on the pod
volume (has_data, wipe while the node is held down), the start gate of the manifest (run
for real), and the NATS driver's faults and undos on kind."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from drillrunner.core.actions import Catalog
from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
from drillrunner.services.nats import client
from drillrunner.services.nats import kind as kind_nats
from drillrunner.services.nats.kind import STORE, KindNatsOps
from drillrunner.services.nats.ops import NatsOps, nats_ops
from drillrunner.services.nats.topology import is_stopped, reachable, readiness
from drillrunner.services.registry import REGISTRY
from drillrunner.targets.kind.target import KindTarget
from tests.unit.kind_fakes import ADAPTERS, Cluster, apis, local_shell, pod

MANIFEST = Path(__file__).parents[2] / "deploy" / "k8s" / "nats" / "nats.yaml"
NAMES = ("nats-0", "nats-1", "nats-2")
HOLD = "/data/.drill-hold"  # the hold file the manifest declares
WIPE = ["sh", "-c", f"rm -rf {STORE}"]
# The manifest's older start gate (a ConfigMap key per pod), which drill no longer uses.


class NatsPods:
    """The pods' side of exec: what PID 1 is (the start gate's shell while held, else
    nats-server), each volume's hold file and store. A new pod is held if its volume has the
    hold file when it starts, unless `ignore_hold` says it started anyway (a hold that came
    too late)."""

    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.store = {n: {"_meta_", "DRILL"} for n in NAMES}
        self.held: set[str] = set()  # volumes with the hold file
        self.pid1 = {c.pods[n].metadata.uid: "nats-server" for n in NAMES}
        self.ignore_hold = 0
        self.rm_fails = False

    def __call__(self, pod_name: str, container: str, argv: list[str],
                 stdin: str | None) -> tuple[int, str, str]:
        assert container == "nats"
        uid = self.c.pods[pod_name].metadata.uid
        if uid not in self.pid1:  # a new pod starting
            held = pod_name in self.held
            if held and self.ignore_hold:
                self.ignore_hold -= 1
                self.held.discard(pod_name)
                held = False
            self.pid1[uid] = "sh" if held else "nats-server"
        script = argv[2] if argv[:2] == ["sh", "-c"] else ""
        if script == f"touch {HOLD}":
            self.held.add(pod_name)
            return 0, "", ""
        if argv == ["rm", "-f", HOLD]:  # the start (undo) releases it: the gate execs
            self.held.discard(pod_name)
            self.pid1[uid] = "nats-server"
            return 0, "", ""
        if script.startswith(f"if [ -e {HOLD} ]"):  # the target's hold_state
            if pod_name not in self.held:
                return 0, "free\n", ""
            return 0, ("holding" if self.pid1[uid] == "nats-server" else "held") + "\n", ""
        if argv == WIPE:
            assert self.pid1[uid] == "sh", "store removed under a running nats-server"
            if self.rm_fails:
                return 1, "", "rm: can't remove '/data/jetstream/DRILL': Permission denied"
            self.store[pod_name] = set()
            return 0, "", ""
        if "ls -A" in script:
            return 0, ("yes" if self.store[pod_name] else "no") + "\n", ""
        return 127, "", f"unexpected command {argv}"


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster(recreate=True)
    for i, n in enumerate(NAMES):
        c.pods[n] = pod(n, "nats", port=4222, node=f"drill-worker{i + 1}", hold=HOLD,
                        running=True)
    return c


@pytest.fixture
def pods(cluster: Cluster) -> NatsPods:
    return NatsPods(cluster)


def make(c: Cluster, tmp_path: Path, handler: Any = None, **kw: Any) -> KindTarget:
    kw.setdefault("forward", False)
    return KindTarget(apis(c, handler), adapters=ADAPTERS, context="kind-drill", state=tmp_path,
                      **kw)


def ops_of(t: KindTarget) -> KindNatsOps:
    ops = nats_ops(t)  # through the target's adapters, as the driver does
    assert isinstance(ops, KindNatsOps)
    return ops


def test_servers_ports_and_stream(cluster: Cluster, tmp_path: Path) -> None:
    ops = ops_of(make(cluster, tmp_path))
    assert isinstance(ops, NatsOps)
    assert [(m.name, m.port) for m in ops.servers()] == [(n, 4222) for n in NAMES]
    assert ops.monitor_port("nats-1") == 8222
    assert ops.stream_spec().replicas == 3
    with pytest.raises(StackError, match="no member 'kafka-0'"):
        ops.monitor_port("kafka-0")


def test_monitor_ports_are_forwarded(cluster: Cluster, tmp_path: Path) -> None:
    t = make(cluster, tmp_path, forward=True)
    try:
        ops = ops_of(t)
        ports = [ops.monitor_port(n) for n in NAMES]
        assert len(set(ports)) == 3 and ports == [ops.monitor_port(n) for n in NAMES]
        assert not set(ports) & {m.port for m in ops.servers()}  # not the client ports
    finally:
        t.close()


def test_has_data_runs_in_the_pod(cluster: Cluster, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "jetstream"
    monkeypatch.setattr(kind_nats, "STORE", str(store))
    ops = ops_of(make(cluster, tmp_path, local_shell))  # the script really runs, here
    assert not ops.has_data("nats-0")  # no store folder yet
    store.mkdir()
    assert not ops.has_data("nats-0")  # an empty one
    (store / "_meta_").mkdir()
    assert ops.has_data("nats-0")
    del cluster.pods["nats-2"]
    with pytest.raises(ActionFailed, match="nats-2: no such pod"):
        ops.has_data("nats-2")


def test_wipe_holds_the_node_down_then_empties_its_store(
        cluster: Cluster, pods: NatsPods, tmp_path: Path) -> None:
    ops = ops_of(make(cluster, tmp_path, pods))
    assert ops.has_data("nats-1")
    old_uid = cluster.pods["nats-1"].metadata.uid
    cluster.calls.clear()
    ops.wipe("nats-1")
    names = cluster.names()
    hold = cluster.calls.index(("exec", ("nats-1", ["sh", "-c", f"touch {HOLD}"]), {}))
    delete = names.index("delete_namespaced_pod")
    wipe = cluster.calls.index(("exec", ("nats-1", WIPE), {}))
    assert hold < delete < wipe
    assert cluster.calls[delete][2] == {"grace_period_seconds": 0}
    assert pods.held == {"nats-1"}  # down until its start (the undo)
    assert cluster.pods["nats-1"].metadata.uid != old_uid
    assert pods.store["nats-1"] == set() and pods.store["nats-0"] == {"_meta_", "DRILL"}
    assert not ops.has_data("nats-1")
    assert [c for c in cluster.calls if c[0] == "delete_namespaced_pod"
            and c[1][0] != "nats-1"] == []
    ops.wipe("nats-1")  # idempotent: held and emptied again, nothing else touched
    assert pods.store["nats-1"] == set() and pods.held == {"nats-1"}
    assert cluster.names().count("delete_namespaced_pod") == 1


def test_wipe_deletes_again_a_pod_that_raced_the_hold(
        cluster: Cluster, pods: NatsPods, tmp_path: Path) -> None:
    pods.ignore_hold = 1  # the first replacement started nats-server, not held
    ops = ops_of(make(cluster, tmp_path, pods))
    ops.wipe("nats-0")
    assert [c[1][0] for c in cluster.calls if c[0] == "delete_namespaced_pod"] == \
        ["nats-0", "nats-0"]
    assert pods.store["nats-0"] == set()


def test_wipe_that_cannot_hold_fails_clearly(
        cluster: Cluster, pods: NatsPods, tmp_path: Path) -> None:
    pods.ignore_hold = 99
    ops = ops_of(make(cluster, tmp_path, pods))
    with pytest.raises(ActionFailed, match="nats-2: could not hold the node down"):
        ops.wipe("nats-2")
    assert pods.store["nats-2"] == {"_meta_", "DRILL"}  # never removed under a server


def test_wipe_failure_names_the_pod(
        cluster: Cluster, pods: NatsPods, tmp_path: Path) -> None:
    pods.rm_fails = True
    ops = ops_of(make(cluster, tmp_path, pods))
    with pytest.raises(ActionFailed, match=r"nats-0: wiping /data/jetstream failed \(exit 1\)"
                       r".*Permission denied"):
        ops.wipe("nats-0")


def test_wipe_needs_a_declared_hold_file(cluster: Cluster, pods: NatsPods,
                                         tmp_path: Path) -> None:
    cluster.pods["nats-0"].metadata.annotations = None
    ops = ops_of(make(cluster, tmp_path, pods))
    with pytest.raises(ActionFailed, match="nats-0: its pod declares no hold file"):
        ops.wipe("nats-0")
    assert "delete_namespaced_pod" not in cluster.names()


def healthy_cluster(monkeypatch: pytest.MonkeyPatch, leader: str = "nats-1") -> None:
    """The servers' answers (monitoring and stream info) for a healthy R3 stream."""
    def monitor(port: int, path: str, timeout: float = 1.0) -> tuple[int, dict[str, Any]]:
        if path == "/healthz":
            return 200, {"status": "ok"}
        return 200, {"meta_cluster": {"leader": "nats-0"}}

    def stream_info(servers: list[str], name: str = client.STREAM,
                    timeout: float = 1.0) -> Any:
        peers = [SimpleNamespace(name=n, current=True, offline=False)
                 for n in NAMES if n != leader]
        return SimpleNamespace(cluster=SimpleNamespace(leader=leader, replicas=peers),
                               config=SimpleNamespace(num_replicas=3))

    monkeypatch.setattr(client, "monitor", monitor)
    monkeypatch.setattr(client, "stream_info", stream_info)


def context(t: KindTarget, undos: list[tuple[str, dict[str, Any]]]) -> RunContext:
    return RunContext(target=t, scenario="s", history=History(), record=lambda *a, **k: None,
                      _undo_sink=lambda name, args: undos.append((name, args)))


def test_destroy_stream_leader_on_kind(cluster: Cluster, pods: NatsPods, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The store-loss scenario's fault: kill the stream leader, wipe its store while it is
    held down; its undo (restart_member) finds the cluster ready, twice."""
    healthy_cluster(monkeypatch)
    t = make(cluster, tmp_path, pods)
    catalog = Catalog.load(["drillrunner.services.nats"])
    undos: list[tuple[str, dict[str, Any]]] = []
    ctx = context(t, undos)
    fault = catalog.get("nats.destroy_stream_leader")
    assert fault is not None
    result = fault.call(ctx, fault.bind({}))
    assert result.members == ["nats-1"]
    assert undos == [("nats.restart_member", {"member": "nats-1"})]
    assert pods.store["nats-1"] == set() and pods.store["nats-2"] == {"_meta_", "DRILL"}
    assert pods.held == {"nats-1"}
    undo = catalog.get("nats.restart_member")
    assert undo is not None
    for _ in range(2):
        done = undo.call(ctx, undo.bind(undos[0][1]))
        assert done.detail == {"stream_leader": "nats-1"}


def test_pause_and_resume_on_kind(cluster: Cluster, pods: NatsPods, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """kind pauses by isolating the pod: the driver sees it paused (not reachable), and
    resume_member removes the isolation (before, it saw no PID and never resumed)."""
    healthy_cluster(monkeypatch, leader="nats-0")
    t = make(cluster, tmp_path, pods)
    ops = ops_of(t)
    catalog = Catalog.load(["drillrunner.services.nats"])
    undos: list[tuple[str, dict[str, Any]]] = []
    ctx = context(t, undos)
    fault = catalog.get("nats.pause_stream_leader")
    assert fault is not None
    fault.call(ctx, fault.bind({}))
    assert undos == [("nats.resume_member", {"member": "nats-0"})]
    assert is_stopped(t, t.member("nats", "nats-0"))
    assert [m.name for m in reachable(t, ops)] == ["nats-1", "nats-2"]
    assert "nats-0 is paused" in readiness(t, ops).problems
    undo = catalog.get("nats.resume_member")
    assert undo is not None
    first = undo.call(ctx, undo.bind(undos[0][1]))
    assert first.members == ["nats-0"] and cluster.policies == {}
    assert undo.call(ctx, undo.bind(undos[0][1])).members == []  # idempotent
    assert readiness(t, ops).ready
    t.pause(t.member("nats", "nats-2"))  # restart_all resumes paused nodes too
    everything = catalog.get("nats.restart_all")
    assert everything is not None
    assert everything.call(ctx, everything.bind({})).members == ["nats-2"]
    assert cluster.policies == {}


def gate_script(tmp_path: Path) -> tuple[str, Path]:
    """The manifest's start gate with its paths moved under tmp_path and the server
    replaced by an echo."""
    docs = list(yaml.safe_load_all(MANIFEST.read_text()))
    sts = next(d for d in docs if d and d["kind"] == "StatefulSet")
    c = sts["spec"]["template"]["spec"]["containers"][0]
    script = c["command"][-1]
    assert c["command"][:2] == ["sh", "-c"]
    assert "exec nats-server --config /etc/nats/nats.conf" in script
    data = tmp_path / "data"
    data.mkdir()
    script = (script.replace("/data", str(data))
              .replace("exec nats-server --config /etc/nats/nats.conf", "echo started"))
    return script, data


def run_gate(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["sh", "-c", script], env={"PATH": "/bin:/usr/bin"},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def test_the_manifest_gate_holds_while_the_hold_file_exists(tmp_path: Path) -> None:
    script, data = gate_script(tmp_path)
    assert run_gate(script).communicate(timeout=10)[0] == "started\n"  # no hold: at once
    (data / ".drill-hold").touch()  # what the target's hold() writes before a kill
    proc = run_gate(script)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=1.0)  # held
    (data / ".drill-hold").unlink()  # release()
    assert proc.communicate(timeout=10)[0] == "started\n"


def test_manifest_matches_this_module() -> None:
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    config = next(d for d in docs if d["kind"] == "ConfigMap"
                  and d["metadata"]["name"] == "nats-config")["data"]["nats.conf"]
    assert f"store_dir: {STORE}" in config
    assert "no_advertise: true" in config
    template = next(d for d in docs if d["kind"] == "StatefulSet")["spec"]["template"]
    assert template["metadata"]["annotations"]["drill.dev/hold-file"] == HOLD
    spec = template["spec"]
    mounts = {m["name"]: m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["data"] == "/data" and "hold" not in mounts
    assert STORE.startswith("/data/") and HOLD.startswith("/data/")
    ports = spec["containers"][0]["ports"]
    assert ports[0]["containerPort"] == 4222  # the members' address: the client port
    assert kind_nats.MONITOR_PORT in {p["containerPort"] for p in ports}


def test_prepare_creates_the_stream_through_the_members(
        cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], int]] = []
    answers = iter([TimeoutError("no meta leader yet"), "created"])

    def ensure_stream(servers: list[str], spec: client.StreamSpec,
                      timeout: float = 5.0) -> str:
        seen.append((servers, spec.replicas))
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(client, "ensure_stream", ensure_stream)
    ops = ops_of(make(cluster, tmp_path))
    assert ops.prepare() == ["nats stream DRILL created"]  # retried until it answers
    assert seen[-1] == (["nats://10.244.1.5:4222"] * 3, 3)


def test_registered_for_the_kind_target() -> None:
    assert REGISTRY.adapters("kind")["nats"] == "drillrunner.services.nats.kind:KindNatsOps"

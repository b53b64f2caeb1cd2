"""KindTarget against fake CoreV1Api / AppsV1Api / NetworkingV1Api objects (no cluster)."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    V1Container,
    V1ContainerPort,
    V1LabelSelector,
    V1ObjectMeta,
    V1PodSpec,
    V1PodTemplateSpec,
    V1StatefulSet,
    V1StatefulSetSpec,
)

from drillrunner.core.actions import Catalog
from drillrunner.core.errors import ActionFailed, MissingBinary, StackError, UsageError
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
from drillrunner.targets.base import Signal, Target
from drillrunner.targets.kind.apis import KubeApis
from drillrunner.targets.kind.nodes import DockerNodes
from drillrunner.targets.kind.safety import allowed_patterns, check_context
from drillrunner.targets.kind.target import KindTarget
from tests.unit.kind_fakes import ADAPTERS, STACK, Cluster, ExplodingApi, apis, pod


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster()
    for p in (pod("redis-0", "redis"), pod("redis-1", "redis", ready=False),
              pod("sentinel-0", "redis", "sentinel", port=26379, node="drill-worker2"),
              pod("tsdb-0", "timescaledb", port=5432),
              pod("oms-abc", "oms", port=8000, sts=False)):
        c.pods[p.metadata.name] = p
    c.configmaps["oms-config"] = {"KILL_SWITCH_DEFAULT": "engaged"}
    return c


def target(c: Cluster, tmp_path: Path, **kw: Any) -> KindTarget:
    return KindTarget(apis(c), adapters=ADAPTERS, context="kind-drill", state=tmp_path,
                      forward=False, **kw)


def test_allow_list_default_and_env() -> None:
    assert allowed_patterns({}) == ("kind-*",)
    assert check_context("kind-drill", {}) == "kind-drill"
    with pytest.raises(UsageError, match="not on the allow-list"):
        check_context("prod-eu", {})
    env = {"DRILL_KUBE_CONTEXTS": "kwok-*, lab"}
    assert check_context("kwok-test", env) == "kwok-test"
    with pytest.raises(UsageError):
        check_context("kind-drill", env)  # the env replaces the default


def test_refused_context_before_any_api_call(tmp_path: Path) -> None:
    boom = ExplodingApi()
    apis_ = KubeApis(core=boom, apps=boom, networking=boom, version=boom, stream=boom)
    with pytest.raises(UsageError, match="'prod'"):
        KindTarget(apis_, adapters=ADAPTERS, context="prod", state=tmp_path)


def test_connect_refuses_before_reading_kubeconfig(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-kubeconfig"
    with pytest.raises(UsageError, match="allow-list"):
        KindTarget.connect(kubeconfig=missing, adapters=ADAPTERS, context="gke_prod")


def test_connect_with_kubeconfig_builds_clients_without_calls(tmp_path: Path) -> None:
    cfg = tmp_path / "kubeconfig"
    cfg.write_text("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: kind-drill, context: {cluster: c, user: u}},
           {name: prod, context: {cluster: c, user: u}}]
current-context: prod
""")
    with pytest.raises(UsageError, match="'prod'"):  # the current context is checked too
        KindTarget.connect(adapters=ADAPTERS, kubeconfig=cfg)
    t = KindTarget.connect(kubeconfig=cfg, adapters=ADAPTERS, context="kind-drill", state=tmp_path)
    assert t.context == "kind-drill" and t.namespace == "drill"
    t.close()


def test_members_by_labels(cluster: Cluster, tmp_path: Path) -> None:
    t = target(cluster, tmp_path)
    assert isinstance(t, Target)
    redis = t.members("redis")
    assert [(m.name, m.kind, m.port) for m in redis] == [
        ("redis-0", "server", 6379), ("redis-1", "server", 6379),
        ("sentinel-0", "sentinel", 26379)]
    sel = [c[2]["label_selector"] for c in cluster.calls if c[0] == "list_namespaced_pod"]
    assert sel[-1] == "app.kubernetes.io/name=redis,app.kubernetes.io/part-of=drill-stack"
    assert [m.name for m in t.members("oms")] == ["oms-abc"]
    assert t.services() == ["timescaledb", "redis", "oms"]
    assert t.is_running(t.member("redis", "redis-0"))
    assert not t.is_running(t.member("redis", "redis-1"))  # not Ready
    assert t.pid(redis[0]) is None


def test_statefulset_ordinal_without_pod_is_listed_and_down(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    tmpl = V1PodTemplateSpec(
        metadata=V1ObjectMeta(labels={**STACK, "app.kubernetes.io/name": "redis"}),
        spec=V1PodSpec(containers=[V1Container(name="redis", ports=[
            V1ContainerPort(container_port=6379)])]))
    cluster.statefulsets.append(V1StatefulSet(
        metadata=V1ObjectMeta(name="redis", labels={**STACK, "app.kubernetes.io/name": "redis"}),
        spec=V1StatefulSetSpec(replicas=3, selector=V1LabelSelector(match_labels={"a": "b"}),
                               service_name="redis", template=tmpl)))
    t = target(cluster, tmp_path)
    names = [m.name for m in t.members("redis")]
    assert "redis-2" in names
    assert not t.is_running(t.member("redis", "redis-2"))


def test_port_forward_addresses_are_local_and_stable(cluster: Cluster, tmp_path: Path) -> None:
    t = KindTarget(apis(cluster), adapters=ADAPTERS, context="kind-drill", state=tmp_path)
    try:
        first = t.member("redis", "redis-0")
        assert first.host == "127.0.0.1" and first.port > 0
        assert t.member("redis", "redis-0").port == first.port
    finally:
        t.close()


def test_kill_deletes_with_grace_zero_and_waits(cluster: Cluster, tmp_path: Path) -> None:
    cluster.recreate = True
    t = target(cluster, tmp_path)
    ref = t.member("redis", "redis-0")
    t.kill(ref, Signal.KILL)
    deletes = [c for c in cluster.calls if c[0] == "delete_namespaced_pod"]
    assert deletes == [("delete_namespaced_pod", ("redis-0", "drill"),
                        {"grace_period_seconds": 0})]
    assert cluster.pods["redis-0"].metadata.uid == "uid-redis-0-new"  # waited for the new one
    t.kill(ref, Signal.TERM)
    assert [c for c in cluster.calls if c[0] == "delete_namespaced_pod"][-1][2] == {}
    cluster.recreate = False
    t.kill(ref)
    t.kill(ref)  # already gone: nothing to do, no error


def test_pause_creates_policy_and_resume_removes_it_idempotently(
        cluster: Cluster, tmp_path: Path) -> None:
    t = target(cluster, tmp_path)
    ref = t.member("redis", "redis-0")
    t.pause(ref)
    t.pause(ref)  # idempotent: 409 swallowed
    policy = cluster.policies["drill-isolate-redis-0"]
    assert policy["spec"] == {
        "podSelector": {"matchLabels": {"statefulset.kubernetes.io/pod-name": "redis-0"}},
        "policyTypes": ["Ingress", "Egress"]}
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"]
    assert t.is_isolated(ref)
    t.resume(ref)
    t.resume(ref)  # idempotent: 404 swallowed
    assert cluster.policies == {} and not t.is_isolated(ref)


def test_pause_of_deployment_pod_labels_it_and_resume_unlabels(
        cluster: Cluster, tmp_path: Path) -> None:
    t = target(cluster, tmp_path)
    ref = t.member("oms", "oms-abc")
    t.pause(ref)
    assert cluster.pods["oms-abc"].metadata.labels["drill.dev/pod-name"] == "oms-abc"
    sel = cluster.policies["drill-isolate-oms-abc"]["spec"]["podSelector"]["matchLabels"]
    assert sel == {"drill.dev/pod-name": "oms-abc"}
    t.resume(ref)
    assert "drill.dev/pod-name" not in cluster.pods["oms-abc"].metadata.labels


def test_describe_has_context_and_fingerprint(cluster: Cluster, tmp_path: Path) -> None:
    d = target(cluster, tmp_path).describe()
    assert d["target"] == "kind" and d["context"] == "kind-drill"
    assert d["kube_system_uid"] == "ks-uid-1234" and d["server_version"] == "v1.33.1"
    assert d["nodes"] == "drill-control-plane,drill-worker"
    assert len(d["cluster_fingerprint"]) == 16
    cluster.nodes.append("drill-worker3")
    assert target(cluster, tmp_path).describe()["cluster_fingerprint"] != \
        d["cluster_fingerprint"]


def test_preflight_and_environment_work_on_kind(cluster: Cluster, tmp_path: Path) -> None:
    from drillrunner.cli.run_cmds import _environment, _preflight
    from drillrunner.core.errors import StackError

    t = target(cluster, tmp_path)
    with pytest.raises(StackError, match=r"redis-1.*drill cluster up"):
        _preflight(t)
    cluster.pods["redis-1"] = pod("redis-1", "redis")
    _preflight(t)
    env = _environment(t, tmp_path)
    assert env["context"] == "kind-drill" and env["cluster_fingerprint"]
    assert env["redis_version"] == "redis:1"


def test_preflight_without_stack_says_cluster_up(tmp_path: Path) -> None:
    from drillrunner.core.errors import StackError

    with pytest.raises(StackError, match="drill cluster up"):
        target(Cluster(), tmp_path).deployments()


def test_logs_and_config_from_configmaps(cluster: Cluster, tmp_path: Path) -> None:
    from kubernetes.client import V1ConfigMapVolumeSource, V1Volume

    cluster.pods["oms-abc"].spec.volumes = [V1Volume(
        name="cfg", config_map=V1ConfigMapVolumeSource(name="oms-config"))]
    t = target(cluster, tmp_path)
    ref = t.member("oms", "oms-abc")
    assert t.log_tail(ref, 20) == "line1\nline2\n"
    assert [c for c in cluster.calls if c[0] == "read_namespaced_pod_log"][-1][2] == {
        "container": "oms", "tail_lines": 20}
    assert t.member_config(ref)["oms-config.KILL_SWITCH_DEFAULT"] == "engaged"


def test_config_change_is_undoable(cluster: Cluster, tmp_path: Path) -> None:
    t = target(cluster, tmp_path)
    prev = t.set_config("oms-config", "KILL_SWITCH_DEFAULT", "disengaged")
    added = t.set_config("oms-config", "NEW", "1")
    assert prev == "engaged" and added is None
    t.restore_config("oms-config", "KILL_SWITCH_DEFAULT", prev)
    t.restore_config("oms-config", "NEW", added)
    t.restore_config("oms-config", "NEW", added)  # idempotent
    assert cluster.configmaps["oms-config"] == {"KILL_SWITCH_DEFAULT": "engaged"}


def test_exec_through_the_stream_api(cluster: Cluster, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    class Resp:
        def read_channel(self, channel: int) -> str:
            assert channel == 3
            return '{"metadata": {}, "status": "Success"}'

        def run_forever(self, timeout: float) -> None:
            seen["timeout"] = timeout

        def is_open(self) -> bool:
            return False

        def read_stdout(self) -> str:
            return "PONG\n"

        def read_stderr(self) -> str:
            return ""

        def close(self) -> None:
            seen["closed"] = True

    def stream(fn: Any, name: str, ns: str, **kw: Any) -> Resp:
        seen.update(fn=fn, name=name, ns=ns, **kw)
        return Resp()

    a = apis(cluster)
    t = KindTarget(KubeApis(a.core, a.apps, a.networking, a.version, stream), adapters=ADAPTERS,
                   context="kind-x",
                   state=tmp_path, forward=False)
    out = t.exec(t.member("redis", "redis-0"), ["redis-cli", "ping"])
    assert out.stdout == "PONG\n" and out.returncode == 0 and seen["closed"]
    assert seen["command"] == ["redis-cli", "ping"] and seen["container"] == "redis"
    assert seen["name"] == "redis-0" and seen["ns"] == "drill" and seen["tty"] is False


class FakeDocker:
    def __init__(self, states: dict[str, str], label: str = "drill") -> None:
        self.states = states
        self.label = label
        self.argv: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        argv = list(argv)
        self.argv.append(argv)
        node = argv[-1]
        out = ""
        if argv[1] == "inspect":
            out = self.label if "Labels" in argv[3] else self.states[node]
        else:
            self.states[node] = {"stop": "exited", "start": "running", "pause": "paused",
                                 "unpause": "running"}[argv[1]]
        return subprocess.CompletedProcess(argv, 0, out + "\n", "")


def test_node_stop_start_command_lines(cluster: Cluster, tmp_path: Path) -> None:
    docker = FakeDocker({"drill-worker": "running"})
    nodes = DockerNodes("drill", run=docker, which=lambda _n: "/usr/bin/docker")
    t = target(cluster, tmp_path, nodes=nodes)
    node = t.node_of(t.member("redis", "redis-0"))
    assert node == "drill-worker"
    t.stop_node(node)
    t.stop_node(node)  # idempotent: no second docker stop
    t.start_node(node)
    t.start_node(node)
    t.pause_node(node)
    t.start_node(node)  # undo of a pause: unpause
    actions = [a for a in docker.argv if a[1] != "inspect"]
    assert actions == [["docker", "stop", "drill-worker"], ["docker", "start", "drill-worker"],
                       ["docker", "pause", "drill-worker"], ["docker", "unpause", "drill-worker"]]
    assert ["docker", "inspect", "-f",
            '{{index .Config.Labels "io.x-k8s.kind.cluster"}}', "drill-worker"] in docker.argv


def test_node_faults_refuse_foreign_containers(cluster: Cluster, tmp_path: Path) -> None:
    docker = FakeDocker({"drill-worker": "running"}, label="other")
    t = target(cluster, tmp_path, nodes=DockerNodes("drill", run=docker,
                                                    which=lambda _n: "/x"))
    with pytest.raises(ActionFailed, match="not a node of kind cluster"):
        t.stop_node("drill-worker")
    with pytest.raises(ActionFailed, match="not a node of kube context"):
        t.stop_node("postgres-prod")
    assert not [a for a in docker.argv if a[1] == "stop"]


def test_node_faults_without_docker_are_clear(cluster: Cluster, tmp_path: Path) -> None:
    t = target(cluster, tmp_path, nodes=DockerNodes("drill", which=lambda _n: None))
    with pytest.raises(MissingBinary, match="docker is not installed"):
        t.stop_node("drill-worker")


def test_registered_kind_faults_journal_undo_first(cluster: Cluster, tmp_path: Path) -> None:
    catalog = Catalog.load(["drillrunner.targets.kind.faults"])
    t = target(cluster, tmp_path)
    undos: list[tuple[str, dict[str, Any]]] = []

    def sink(name: str, args: dict[str, Any]) -> None:
        assert not cluster.policies  # journaled before the fault acted
        undos.append((name, args))

    ctx = RunContext(target=t, scenario="s", history=History(), record=lambda *a, **k: None,
                     _undo_sink=sink)
    spec = catalog.get("kind.isolate_member")
    assert spec is not None and spec.undo == "kind.rejoin_member"
    spec.call(ctx, spec.bind({"service": "redis", "member": "redis-0"}))
    assert undos == [("kind.rejoin_member", {"service": "redis", "member": "redis-0"})]
    undo = catalog.get("kind.rejoin_member")
    assert undo is not None
    for _ in range(2):  # idempotent
        undo.call(ctx, undo.bind(undos[0][1]))
    assert cluster.policies == {}


def test_service_ops_not_supported_on_kind_say_so(cluster: Cluster, tmp_path: Path) -> None:
    from drillrunner.services.redis.ops import redis_ops

    ops = redis_ops(target(cluster, tmp_path))
    assert [m.name for m in ops.sentinels()] == ["sentinel-0"]
    with pytest.raises(ActionFailed, match="not supported on kind yet"):
        ops.wipe("redis-0")


def test_files_round_trip_through_exec(cluster: Cluster, tmp_path: Path) -> None:
    """write_file/read_file really run their shell scripts (here, not in a pod): binary
    data of several chunks arrives byte for byte, and a failing read names the file."""
    from tests.unit.kind_fakes import apis as fake_apis
    from tests.unit.kind_fakes import local_shell

    cluster.pods["redis-0"] = pod("redis-0", "redis")
    t = KindTarget(fake_apis(cluster, local_shell), adapters=ADAPTERS, context="kind-x",
                   forward=False,
                   state=tmp_path)
    member = t.member("redis", "redis-0")
    data = bytes(range(256)) * 700  # 179 200 bytes: several 48 KiB chunks
    dest = tmp_path / "sub dir" / "dump.rdb"
    dest.parent.mkdir()
    t.write_file(member, str(dest), data, chunk=64 * 1024)
    assert dest.read_bytes() == data
    assert not (tmp_path / "sub dir" / "dump.rdb.drill-part").exists()
    assert t.read_file(member, str(dest)) == data
    with pytest.raises(ActionFailed, match=r"reading .*missing"):
        t.read_file(member, str(tmp_path / "missing"))
    assert t.sh(member, "echo hi") == "hi\n"
    out = t.exec(member, ["cat"], stdin="fed through stdin")
    assert out.stdout == "fed through stdin"


def test_secret_and_scale(cluster: Cluster, tmp_path: Path) -> None:
    from types import SimpleNamespace

    cluster.secrets["creds"] = {"password": "s3cret"}
    cluster.statefulsets.append(SimpleNamespace(
        metadata=SimpleNamespace(name="pg", labels={}), spec=SimpleNamespace(replicas=1)))
    t = KindTarget(apis(cluster), adapters=ADAPTERS, context="kind-x", forward=False,
                   state=tmp_path)
    assert t.secret_value("creds", "password") == "s3cret"
    with pytest.raises(StackError, match="no key"):
        t.secret_value("creds", "other")
    assert t.scale("pg", 0) == 1
    assert cluster.statefulsets[0].spec.replicas == 0
    assert t.scale("pg", 1) == 0


def test_every_allow_policy_skips_isolated_pods() -> None:
    """Policies add up: the partition fault cuts a pod off only because every allowance in
    deploy/k8s selects pods WITHOUT drill.dev/isolated (default-deny-all alone selects all)."""
    import yaml

    from drillrunner.targets.kind.target import ISOLATED_LABEL

    root = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
    policies = [d for f in sorted(root.rglob("*.yaml")) for d in yaml.safe_load_all(f.read_text())
                if d and d.get("kind") == "NetworkPolicy"]
    assert len(policies) >= 8
    for policy in policies:
        selector = policy["spec"]["podSelector"]
        if policy["metadata"]["name"] == "default-deny-all":
            assert selector == {} and not policy["spec"].get("ingress") \
                and not policy["spec"].get("egress")
            continue
        assert {"key": ISOLATED_LABEL, "operator": "DoesNotExist"} in \
            selector.get("matchExpressions", []), policy["metadata"]["name"]


def test_pause_labels_the_pod_and_resume_removes_it(cluster: Cluster, tmp_path: Path) -> None:
    cluster.pods["redis-1"] = pod("redis-1", "redis")
    t = KindTarget(apis(cluster), adapters=ADAPTERS, context="kind-x", forward=False,
                   state=tmp_path)
    m = t.member("redis", "redis-1")
    for _ in range(2):
        t.pause(m)
    assert cluster.pods["redis-1"].metadata.labels["drill.dev/isolated"] == "true"
    assert t.is_isolated(m)
    for _ in range(2):
        t.resume(m)
    assert "drill.dev/isolated" not in cluster.pods["redis-1"].metadata.labels
    assert not t.is_isolated(m)


def test_websocket_calls_get_their_own_api_client() -> None:
    """kubernetes.stream swaps call_api on the client it is given: exec and port-forward get
    a CoreV1Api on their own ApiClient (same configuration), never the shared one."""
    from kubernetes import client

    from drillrunner.targets.kind.apis import own_client

    shared = client.CoreV1Api(client.ApiClient(client.Configuration()))
    original = shared.api_client.call_api
    with own_client(shared) as core:
        assert core.api_client is not shared.api_client
        assert core.api_client.configuration is shared.api_client.configuration
        core.api_client.call_api = lambda *a, **k: None  # what stream() does meanwhile
        assert shared.api_client.call_api == original
    fake = object()
    with own_client(fake) as same:  # fakes without an ApiClient pass through
        assert same is fake


def test_pause_forgets_the_pods_open_flows_on_its_node(cluster: Cluster, tmp_path: Path) -> None:
    """Open connections keep their conntrack verdict: after the policy, the node's entries
    to and from the pod's IP are deleted (exit 1 = none matched is fine)."""

    class Conntrack(FakeDocker):
        def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
            if list(argv[:2]) == ["docker", "exec"]:
                self.argv.append(list(argv))
                return subprocess.CompletedProcess(list(argv), 1 if "-d" in argv else 0, "",
                                                   "0 flow entries have been deleted.")
            return super().__call__(argv)

    docker = Conntrack({"drill-worker": "running"})
    t = target(cluster, tmp_path, nodes=DockerNodes("drill", run=docker, which=lambda _n: "/x"))
    t.pause(t.member("redis", "redis-0"))
    execs = [a for a in docker.argv if a[1] == "exec"]
    assert execs == [["docker", "exec", "drill-worker", "conntrack", "-D", "-s", "10.244.1.5"],
                     ["docker", "exec", "drill-worker", "conntrack", "-D", "-d", "10.244.1.5"]]
    assert t.is_isolated(t.member("redis", "redis-0"))


def test_exec_status_channel_gives_the_exit_code_or_the_reason() -> None:
    """The client's own `returncode` raises ValueError on any failure that is not an exit
    code; drill reads the status itself (a command that could not run is ActionFailed)."""
    from drillrunner.targets.kind.target import exit_code
    from tests.unit.kind_fakes import status_text

    assert exit_code(status_text(0)) == 0 and exit_code(None) == 0 and exit_code("") == 0
    assert exit_code(status_text(3)) == 3
    missing = ('{"status": "Failure", "reason": "InternalError", "message": "Internal error '
               'occurred: error executing command in container: executable file not found"}')
    assert "executable file not found" in str(exit_code(missing))


def _held_pod(name: str, *, ready: bool, waiting_in: str | None) -> Any:
    """A kafka pod declaring a hold file; `waiting_in`: the container that runs now."""
    from kubernetes.client import (
        V1ContainerState,
        V1ContainerStateRunning,
        V1ContainerStateWaiting,
        V1ContainerStatus,
    )

    p = pod(name, "kafka", port=9092, ready=ready)
    p.metadata.annotations = {"drill.dev/hold-file": "/var/lib/kafka/data/drill-hold"}

    def status(c: str) -> V1ContainerStatus:
        state = (V1ContainerState(running=V1ContainerStateRunning()) if c == waiting_in
                 else V1ContainerState(waiting=V1ContainerStateWaiting(reason="PodInit")))
        return V1ContainerStatus(name=c, image="x", image_id="", ready=ready,
                                 restart_count=0, state=state)

    p.status.init_container_statuses = [status("drill-hold")]
    p.status.container_statuses = [status("kafka")]
    return p


def test_kill_holds_a_declared_member_down_until_start(cluster: Cluster,
                                                       tmp_path: Path) -> None:
    """A pod with drill.dev/hold-file: kill creates the file before the delete; the new pod
    waits (here in its drill-hold init container) until start removes it, then turns
    Ready. Killed members stay down until their undo, as on the local target."""
    from tests.unit.kind_fakes import apis as fake_apis

    execs: list[tuple[str, str, list[str]]] = []

    def handler(pod_name: str, container: str, argv: list[str],
                stdin: str | None) -> tuple[int, str, str]:
        execs.append((pod_name, container, argv))
        if argv[:2] == ["rm", "-f"]:  # the release: the held pod goes on and turns Ready
            cluster.pods[pod_name] = _held_pod(pod_name, ready=True, waiting_in="kafka")
        return 0, "", ""

    cluster.pods["kafka-1"] = _held_pod("kafka-1", ready=True, waiting_in="kafka")
    t = KindTarget(fake_apis(cluster, handler), adapters=ADAPTERS, context="kind-x", forward=False,
                   state=tmp_path)
    m = t.member("kafka", "kafka-1")
    t.kill(m)
    assert execs == [("kafka-1", "kafka",
                      ["sh", "-c", "touch /var/lib/kafka/data/drill-hold"])]
    assert "kafka-1" not in cluster.pods
    cluster.pods["kafka-1"] = _held_pod("kafka-1", ready=False, waiting_in="drill-hold")
    assert not t.is_running(m)
    t.start(m, timeout=5)
    assert execs[1] == ("kafka-1", "drill-hold", ["rm", "-f", "/var/lib/kafka/data/drill-hold"])
    assert t.is_running(m) and len(execs) == 2
    t.start(m, timeout=5)  # already Ready: nothing to release
    assert len(execs) == 2


def test_kill_of_a_container_that_just_died_needs_no_hold(cluster: Cluster,
                                                          tmp_path: Path) -> None:
    """The kubelet's status lags: a pod still shown running may refuse the touch because
    its container just died. That is no error (it is not running); the pod is deleted."""
    from tests.unit.kind_fakes import apis as fake_apis

    def handler(pod_name: str, container: str, argv: list[str],
                stdin: str | None) -> tuple[int, str, str]:
        cluster.pods[pod_name] = _held_pod(pod_name, ready=False, waiting_in=None)
        return 1, "", "container not found"

    cluster.pods["kafka-2"] = _held_pod("kafka-2", ready=True, waiting_in="kafka")
    t = KindTarget(fake_apis(cluster, handler), adapters=ADAPTERS, context="kind-x", forward=False,
                   state=tmp_path)
    t.kill(t.member("kafka", "kafka-2"))
    assert "kafka-2" not in cluster.pods
    # hold=False (the caller held it already): no exec at all
    cluster.pods["kafka-2"] = _held_pod("kafka-2", ready=True, waiting_in="kafka")
    before = len([c for c in cluster.calls if c[0] == "exec"])
    t.kill(t.member("kafka", "kafka-2"), hold=False)
    assert len([c for c in cluster.calls if c[0] == "exec"]) == before

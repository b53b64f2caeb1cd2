"""The kind target's control-plane behaviour against a REAL Kubernetes control plane.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the real programs (built
by scripts/build-k8s-testbed); the three nodes are kwok's. What this tier does NOT cover: the
data plane. No container runs on a kwok node (no kubelet, no image, no probe, no log; exec
and port-forward only where test_exec_forward.py sets kwok up to run them on this host), and
nothing enforces NetworkPolicies (no CNI). So these tests prove
what the API server and the controllers do with the kind target's requests (validation,
discovery, deletion and recreation, ConfigMaps, policies, node status); whether a server in a
pod survives a fault is proved by the local target's tests (tests/integration) and by the
kind e2e test on a machine with Docker.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from drillrunner.core.errors import MissingBinary, UsageError
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
from drillrunner.services.registry import REGISTRY
from tests.k8s.controlplane import (
    CONTEXT,
    FOREIGN_CONTEXT,
    KWOK_LABEL,
    NODES,
    ControlPlane,
    node_ready,
    pod_ready,
)
from tests.k8s.stack import (
    NAMESPACE,
    AppliedStack,
    Recreation,
    wait_replacement_ready,
)

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

ADAPTERS = REGISTRY.adapters("kind")
SERVICES = ("timescaledb", "redis", "kafka", "nats", "feast", "oms")


def make_target(plane: ControlPlane, tmp: Path, **kw: Any) -> Any:
    from drillrunner.targets.kind.target import KindTarget

    return KindTarget.connect(kubeconfig=plane.kubeconfig, context=kw.pop("context", CONTEXT),
                              adapters=ADAPTERS, state=tmp, forward=kw.pop("forward", False),
                              **kw)


def make_ctx(target: Any) -> tuple[RunContext, list[tuple[str, dict[str, Any]]]]:
    undos: list[tuple[str, dict[str, Any]]] = []
    ctx = RunContext(target=target, scenario="k8s-testbed", history=History(),
                     record=lambda event, **data: None,
                     _undo_sink=lambda action, args: undos.append((action, args)))
    return ctx, undos


def core(plane: ControlPlane) -> Any:
    from kubernetes import client

    return client.CoreV1Api(plane.api)


# --- the control plane itself ---------------------------------------------------------------

def test_control_plane_is_the_real_release(control_plane: ControlPlane) -> None:
    fp = control_plane.fingerprint()
    assert fp["gitVersion"] == "v1.35.4", fp
    nodes = core(control_plane).list_node().items
    assert sorted(n.metadata.name for n in nodes) == list(NODES)
    assert all(node_ready(n) == "True" for n in nodes)
    assert all(pid for pid in control_plane.pids().values()), control_plane.pids()


# --- manifests --------------------------------------------------------------------------------

def test_stack_manifests_pass_strict_server_side_validation(stack: AppliedStack) -> None:
    """`kubectl apply --server-side --dry-run=server --validate=strict -k deploy/k8s`, run by
    the stack fixture before anything but the namespace is applied: the API server itself
    checks every object (unknown or duplicate fields are errors, not warnings)."""
    out = stack.validation
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("serverside-applied (server dry run)") == stack.documents, out.stdout


BROKEN = """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: broken, namespace: default}}
spec:
  serviceName: broken
  replicas: 1
  selector: {{matchLabels: {{app: broken}}}}
  template:
    metadata: {{labels: {{app: broken}}}}
    spec:
      containers:
        - name: c
          image: redis:7
          ports: [{{containerPort: {port}}}]
          readinessProbe: {{tcpSocket: {{port: 6379}}, {probe_field}: 5}}
"""


@pytest.mark.parametrize(("port", "probe_field", "error"), [
    (6379, "periodSecnds", "periodSecnds: field not declared in schema"),
    (70000, "periodSeconds", "containerPort: Invalid value: 70000"),
], ids=["unknown-field", "port-out-of-range"])
def test_server_side_validation_rejects_a_broken_manifest(control_plane: ControlPlane,
                                                          tmp_path: Path, port: int,
                                                          probe_field: str, error: str) -> None:
    """The same strict server-side dry run refuses a misspelt field (schema) and a port out
    of range (the API server's own validation of a StatefulSet's pod template)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(BROKEN.format(port=port, probe_field=probe_field))
    out = control_plane.kubectl("apply", "--server-side", "--dry-run=server",
                                "--validate=strict", "-f", str(bad), check=False)
    assert out.returncode != 0
    assert error in out.stderr, out.stderr


def test_stack_applied_and_every_workload_ready(control_plane: ControlPlane,
                                                stack: AppliedStack) -> None:
    from kubernetes import client

    apps = client.AppsV1Api(control_plane.api)
    sts = apps.list_namespaced_stateful_set(NAMESPACE).items
    deps = apps.list_namespaced_deployment(NAMESPACE).items
    # Every member has a stable name (scenarios address oms-0, feast-feature-server-0...).
    assert sorted(s.metadata.name for s in sts) == [
        "feast-feature-server", "feast-registry", "kafka", "nats", "oms", "redis",
        "redis-sentinel", "timescaledb"]
    for w in [*sts, *deps]:
        assert (w.status.ready_replicas or 0) == w.spec.replicas, w.metadata.name
    pvcs = core(control_plane).list_namespaced_persistent_volume_claim(NAMESPACE).items
    assert pvcs and all(p.status.phase == "Bound" for p in pvcs), [
        (p.metadata.name, p.status.phase) for p in pvcs]
    # Pods land on the three fake nodes: the real scheduler placed them.
    pods = core(control_plane).list_namespaced_pod(NAMESPACE).items
    assert {p.spec.node_name for p in pods if p.spec.node_name} <= set(NODES)


# --- the kind target: discovery -------------------------------------------------------------

def test_members_found_by_labels(control_plane: ControlPlane, stack: AppliedStack,
                                 tmp_path: Path) -> None:
    target = make_target(control_plane, tmp_path)
    try:
        assert target.services() == [s for s in ADAPTERS if s in SERVICES]
        for service in SERVICES:
            if service == "feast":
                continue  # see test_members_skip_job_pods
            members = target.members(service)
            pods = core(control_plane).list_namespaced_pod(
                NAMESPACE, label_selector=f"app.kubernetes.io/name={service},"
                "app.kubernetes.io/part-of=drill-stack").items
            running = {p.metadata.name for p in pods if p.status.phase == "Running"}
            assert members, service
            assert running <= {m.name for m in members}, (service, running, members)
            assert all(target.is_running(m) for m in members if m.name in running)
        kinds = {m.kind for m in target.members("redis")}
        assert kinds == {"server", "sentinel"}, kinds
    finally:
        target.close()


def test_members_skip_job_pods(control_plane: ControlPlane, stack: AppliedStack,
                               tmp_path: Path) -> None:
    target = make_target(control_plane, tmp_path)
    try:
        members = target.members("feast")
        jobs = core(control_plane).list_namespaced_pod(
            NAMESPACE, label_selector="job-name=feast-apply").items
        assert jobs and not {p.metadata.name for p in jobs} & {m.name for m in members}
        assert all(target.is_running(m) for m in members)
    finally:
        target.close()


def test_members_through_port_forward_listeners(control_plane: ControlPlane,
                                                stack: AppliedStack, tmp_path: Path) -> None:
    """With forwarding on, each member is a 127.0.0.1 listener (bound at listing); a kwok pod
    has no kubelet behind it, so a connection is accepted and then closed."""
    import socket

    target = make_target(control_plane, tmp_path, forward=True)
    try:
        member = target.members("redis")[0]
        assert member.host == "127.0.0.1" and member.port > 0
        with socket.create_connection((member.host, member.port), timeout=5) as s:
            s.settimeout(10)
            assert s.recv(1) == b""  # closed: no data plane on kwok
    finally:
        target.close()


# --- the kind target: kill = pod deletion with grace 0 ------------------------------------

def _kill_and_time(plane: ControlPlane, tmp: Path, service: str, member: str | None,
                   selector: str) -> Recreation:
    target = make_target(plane, tmp)
    try:
        if member is None:
            member = target.members(service)[0].name
        ref = target.member(service, member)
        listing = core(plane).list_namespaced_pod(NAMESPACE, label_selector=selector)
        existing = {p.metadata.uid for p in listing.items}
        old = next(p for p in listing.items if p.metadata.name == member)
        if not pod_ready(old):  # e.g. still coming back from an earlier test's fault
            poll_until(lambda: target.is_running(ref), timeout=60, interval=0.2,
                       what=f"{member} Ready before the fault")
            listing = core(plane).list_namespaced_pod(NAMESPACE, label_selector=selector)
            existing = {p.metadata.uid for p in listing.items}
            old = next(p for p in listing.items if p.metadata.name == member)
        since = time.monotonic()
        target.kill(ref)  # grace 0; returns once that pod (by UID) is gone
        gone = time.monotonic() - since
        rec = wait_replacement_ready(core(plane), namespace=NAMESPACE, label_selector=selector,
                                     old_uid=old.metadata.uid, existing=existing,
                                     resource_version=listing.metadata.resource_version,
                                     since=since)
        if service != "oms":
            assert rec.new_name == member  # a StatefulSet recreates the same identity
            target.start(ref, timeout=30)  # the target's own wait agrees
            assert target.is_running(ref)
        print(f"\n{service} {member}: deleted (grace 0) in {gone:.3f} s; replacement "
              f"{rec.new_name} scheduled at {rec.scheduled_seconds:.3f} s, Ready at "
              f"{rec.ready_seconds:.3f} s on {rec.node}")
        return rec
    finally:
        target.close()


def test_kill_statefulset_pod_is_recreated_and_ready(control_plane: ControlPlane,
                                                     stack: AppliedStack,
                                                     tmp_path: Path) -> None:
    times = []
    for member in ("redis-0", "timescaledb-0", "kafka-1"):
        service = member.split("-")[0]
        rec = _kill_and_time(control_plane, tmp_path, service, member,
                             f"statefulset.kubernetes.io/pod-name={member}")
        times.append(rec.ready_seconds)
    # The StatefulSet controller + scheduler + kwok on 2 shared cores: seconds, not minutes.
    assert max(times) < 60, times


def test_kill_oms_pod_is_replaced_and_ready(control_plane: ControlPlane, stack: AppliedStack,
                                            tmp_path: Path) -> None:
    rec = _kill_and_time(control_plane, tmp_path, "oms", None,
                         "app.kubernetes.io/name=oms,app.kubernetes.io/part-of=drill-stack")
    assert rec.ready_seconds < 60


def test_kill_of_a_missing_pod_is_a_no_op(control_plane: ControlPlane, stack: AppliedStack,
                                          tmp_path: Path) -> None:
    from drillrunner.targets.base import MemberRef

    target = make_target(control_plane, tmp_path)
    try:
        target.kill(MemberRef(service="redis", name="redis-99", host="x", port=1))
    finally:
        target.close()


# --- ConfigMaps: kill-switch and circuit breakers -------------------------------------------

def _configmaps_with(plane: ControlPlane, words: tuple[str, ...]) -> list[tuple[str, str]]:
    found = []
    for cm in core(plane).list_namespaced_config_map(NAMESPACE).items:
        for key in cm.data or {}:
            if any(w in key.lower() for w in words):
                found.append((cm.metadata.name, key))
    return found


@pytest.mark.parametrize("words", [("kill",), ("breaker",)], ids=["kill-switch", "breaker"])
def test_configmap_fault_and_rollback(control_plane: ControlPlane, stack: AppliedStack,
                                      tmp_path: Path, words: tuple[str, ...]) -> None:
    from drillrunner.targets.kind import faults

    found = _configmaps_with(control_plane, words)
    assert found, f"no ConfigMap key mentioning {words} in deploy/k8s"
    configmap, key = found[0]
    target = make_target(control_plane, tmp_path)
    try:
        before = target.read_config(configmap)
        assert before is not None
        ctx, undos = make_ctx(target)
        faults.set_config(ctx, configmap=configmap, key=key, value="drill-fault-value")
        assert undos == [("kind.restore_config",
                          {"configmap": configmap, "key": key, "previous": before[key]})]
        live = core(control_plane).read_namespaced_config_map(configmap, NAMESPACE)
        assert live.data[key] == "drill-fault-value"
        for _ in range(2):  # the undo is idempotent
            faults.restore_config(ctx, **undos[0][1])
            live = core(control_plane).read_namespaced_config_map(configmap, NAMESPACE)
            assert live.data == before
        # A key that did not exist is removed again by its undo.
        ctx, undos = make_ctx(target)
        faults.set_config(ctx, configmap=configmap, key="drill-new-key", value="1")
        faults.restore_config(ctx, **undos[0][1])
        live = core(control_plane).read_namespaced_config_map(configmap, NAMESPACE)
        assert live.data == before
    finally:
        target.close()


# --- partition: NetworkPolicy isolation and its undo ----------------------------------------

def _selector(sel: Any) -> str:
    """A LabelSelector object as a label-selector string (for the API server to evaluate)."""
    parts = [f"{k}={v}" for k, v in (sel.match_labels or {}).items()]
    ops = {"DoesNotExist": "!{key}", "Exists": "{key}", "In": "{key} in ({values})",
           "NotIn": "{key} notin ({values})"}
    parts += [ops[e.operator].format(key=e.key, values=",".join(e.values or []))
              for e in (sel.match_expressions or [])]
    return ",".join(parts)


def test_partition_creates_and_removes_isolation_policy(control_plane: ControlPlane,
                                                        stack: AppliedStack,
                                                        tmp_path: Path) -> None:
    """The policy is created and removed for real; nothing ENFORCES it here (no CNI): that it
    cuts traffic is for the kind e2e test."""
    from kubernetes import client

    from drillrunner.targets.kind import faults

    net = client.NetworkingV1Api(control_plane.api)
    target = make_target(control_plane, tmp_path)
    try:
        for service, member in (("redis", "redis-1"), ("oms", target.members("oms")[0].name)):
            ctx, undos = make_ctx(target)
            faults.isolate_member(ctx, service=service, member=member)
            faults.isolate_member(ctx, service=service, member=member)  # idempotent
            assert undos[0] == ("kind.rejoin_member", {"service": service, "member": member})
            policy = net.read_namespaced_network_policy(f"drill-isolate-{member}", NAMESPACE)
            assert sorted(policy.spec.policy_types) == ["Egress", "Ingress"]
            assert not policy.spec.ingress and not policy.spec.egress
            # The API server's own selector evaluation: the policy selects exactly that pod.
            sel = ",".join(f"{k}={v}" for k, v in policy.spec.pod_selector.match_labels.items())
            selected = core(control_plane).list_namespaced_pod(NAMESPACE, label_selector=sel)
            assert [p.metadata.name for p in selected.items] == [member]
            assert target.is_isolated(target.member(service, member))
            # Policies add up: no allowance of deploy/k8s may still select the isolated pod.
            for other in net.list_namespaced_network_policy(NAMESPACE).items:
                if other.metadata.name.startswith("drill-isolate-"):
                    continue
                chosen = core(control_plane).list_namespaced_pod(
                    NAMESPACE, label_selector=_selector(other.spec.pod_selector)).items
                selects = member in [p.metadata.name for p in chosen]
                assert selects == (other.metadata.name == "default-deny-all"), \
                    other.metadata.name
            for _ in range(2):
                faults.rejoin_member(ctx, **undos[0][1])
            assert not target.is_isolated(target.member(service, member))
            pod = core(control_plane).read_namespaced_pod(member, NAMESPACE)
            assert "drill.dev/pod-name" not in (pod.metadata.labels or {})
        left = net.list_namespaced_network_policy(NAMESPACE).items
        assert not [p.metadata.name for p in left if p.metadata.name.startswith("drill-isol")]
    finally:
        target.close()


# --- node failure as the API sees it --------------------------------------------------------

def _set_kwok_managed(plane: ControlPlane, node: str, managed: bool) -> None:
    core(plane).patch_node(node, {"metadata": {"labels": {
        KWOK_LABEL: "managed" if managed else None}}})


def test_node_stops_heartbeating_goes_not_ready_and_returns(control_plane: ControlPlane,
                                                            stack: AppliedStack,
                                                            tmp_path: Path) -> None:
    """kwok stops renewing a node's lease when the node leaves its label selector: to the
    API that is a kubelet gone silent. The real node lifecycle controller marks it NotReady
    (Unknown) after its grace period (10 s here, 50 s by default) and taints it; put back
    under kwok, the node is Ready again. The kind target's own node faults (`docker stop` of a
    node container) need Docker and are refused here with a clear error."""
    node = NODES[2]
    api = core(control_plane)
    since = time.monotonic()
    _set_kwok_managed(control_plane, node, False)
    try:
        poll_until(lambda: node_ready(api.read_node(node)) != "True", timeout=60, interval=0.2,
                   what=f"{node} NotReady")
        not_ready = time.monotonic() - since
        status = node_ready(api.read_node(node))
        taints = {t.key for t in api.read_node(node).spec.taints or []}
        poll_until(lambda: "node.kubernetes.io/unreachable" in {
            t.key for t in api.read_node(node).spec.taints or []}, timeout=30, interval=0.2,
            what=f"{node} tainted unreachable")
        taints = {t.key for t in api.read_node(node).spec.taints or []}
        # The node lifecycle controller also marks every pod on the node not Ready, so the
        # Services and StatefulSets see them gone, as on a real node failure.
        on_node = [p.metadata.name for p in api.list_namespaced_pod(
            NAMESPACE, field_selector=f"spec.nodeName={node}").items
            if p.status.phase == "Running"]
        poll_until(lambda: not any(pod_ready(p) for p in api.list_namespaced_pod(
            NAMESPACE, field_selector=f"spec.nodeName={node}").items), timeout=30,
            interval=0.2, what=f"pods on {node} marked not Ready")
    finally:
        back = time.monotonic()
        _set_kwok_managed(control_plane, node, True)
    poll_until(lambda: node_ready(api.read_node(node)) == "True", timeout=60, interval=0.2,
               what=f"{node} Ready again")
    ready_again = time.monotonic() - back
    from drillrunner.targets.kind.apis import connect
    from drillrunner.targets.kind.cluster import wait_ready

    # kwok marks a pod Ready only once (when it gives it an IP): the pods the node controller
    # marked not Ready stay so, where a real kubelet would report them Ready again. Delete
    # them (grace 0, through the kind target) and their controllers recreate them.
    stale = [p.metadata.name for p in api.list_namespaced_pod(
        NAMESPACE, field_selector=f"spec.nodeName={node}").items
        if p.status.phase == "Running" and not pod_ready(p)]
    _, apis = connect(control_plane.kubeconfig, CONTEXT)
    target = make_target(control_plane, tmp_path)
    try:
        from drillrunner.targets.base import MemberRef

        for name in stale:
            target.kill(MemberRef(service="any", name=name, host="-", port=1))
    finally:
        target.close()
    wait_ready(apis, timeout=120, on_ready=lambda name, n: None, namespace=NAMESPACE)
    pods_back = time.monotonic() - back
    poll_until(lambda: not {t.key for t in api.read_node(node).spec.taints or []}
               & {"node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"},
               timeout=60, interval=0.2, what=f"{node} untainted")
    print(f"\nnode {node}: heartbeat stopped -> Ready={status} after {not_ready:.1f} s "
          f"(taints {sorted(taints)}; {len(on_node)} pods on it marked not Ready); heartbeat "
          f"back -> node Ready after {ready_again:.1f} s; {len(stale)} pods left not Ready "
          f"deleted, every workload Ready after {pods_back:.1f} s")
    assert status == "Unknown"
    assert 5 < not_ready < 45


def test_node_faults_of_the_kind_target_need_docker(control_plane: ControlPlane,
                                                    stack: AppliedStack, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    target = make_target(control_plane, tmp_path)
    try:
        monkeypatch.setattr(target.nodes, "which", lambda name: None)
        with pytest.raises(MissingBinary, match="docker"):
            target.stop_node(NODES[0])
        assert not target.nodes.calls  # nothing was run
        assert target.node_of(target.member("redis", "redis-0")) in NODES
    finally:
        target.close()


# --- safety: the context allow-list, and the fingerprint in the evidence ------------------

def test_context_not_named_kind_is_refused(control_plane: ControlPlane,
                                           monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    """The kubeconfig's second context points at the SAME live cluster: only its name differs.
    It is refused before any client exists; allowed explicitly, it works."""
    from drillrunner.targets.kind.target import KindTarget

    monkeypatch.delenv("DRILL_KUBE_CONTEXTS", raising=False)
    with pytest.raises(UsageError, match="allow-list"):
        KindTarget.connect(kubeconfig=control_plane.kubeconfig, context=FOREIGN_CONTEXT,
                           adapters=ADAPTERS, state=tmp_path, forward=False)
    # The current context of a kubeconfig is checked the same way.
    other = tmp_path / "kubeconfig"
    import yaml

    doc = yaml.safe_load(control_plane.kubeconfig.read_text())
    doc["current-context"] = FOREIGN_CONTEXT
    other.write_text(yaml.safe_dump(doc))
    with pytest.raises(UsageError, match="allow-list"):
        KindTarget.connect(kubeconfig=other, adapters=ADAPTERS, state=tmp_path, forward=False)

    monkeypatch.setenv("DRILL_KUBE_CONTEXTS", "prod-drill-*")
    target = KindTarget.connect(kubeconfig=control_plane.kubeconfig, context=FOREIGN_CONTEXT,
                                adapters=ADAPTERS, state=tmp_path, forward=False)
    try:
        assert target.describe()["context"] == FOREIGN_CONTEXT
    finally:
        target.close()


def test_describe_records_context_and_cluster_fingerprint(control_plane: ControlPlane,
                                                          stack: AppliedStack,
                                                          tmp_path: Path) -> None:
    target = make_target(control_plane, tmp_path)
    try:
        facts = target.describe()
        uid = core(control_plane).read_namespace("kube-system").metadata.uid
        assert facts["context"] == CONTEXT
        assert facts["namespace"] == NAMESPACE
        assert facts["kube_system_uid"] == uid
        assert facts["server_version"] == "v1.35.4"
        assert facts["nodes"] == ",".join(NODES)
        assert len(facts["cluster_fingerprint"]) == 16
        assert target.describe()["cluster_fingerprint"] == facts["cluster_fingerprint"]
        json.dumps(facts)  # goes into summary.json as is
    finally:
        target.close()


# --- pause/resume of a member and ConfigMap evidence ---------------------------------------

def test_pause_resume_and_member_config(control_plane: ControlPlane, stack: AppliedStack,
                                        tmp_path: Path) -> None:
    target = make_target(control_plane, tmp_path)
    try:
        ref = target.member("nats", "nats-0")
        target.pause(ref)
        assert target.is_isolated(ref)
        assert target.is_running(ref)  # the pod itself is untouched: only isolated
        target.resume(ref)
        target.resume(ref)
        assert not target.is_isolated(ref)
        config = target.member_config(ref)
        assert any(k.endswith(".argv") for k in config), config
        assert not any("password" in v.lower() and "=" in v for v in config.values())
    finally:
        target.close()


def test_concurrent_kills_of_two_statefulset_members(control_plane: ControlPlane,
                                                     stack: AppliedStack,
                                                     tmp_path: Path) -> None:
    """Two members of one StatefulSet deleted at once (OrderedReady or Parallel policy, as
    the manifests say): both come back Ready."""
    results: dict[str, Recreation] = {}
    errors: list[BaseException] = []

    def kill(member: str) -> None:
        try:
            results[member] = _kill_and_time(control_plane, tmp_path, "nats", member,
                                             f"statefulset.kubernetes.io/pod-name={member}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=kill, args=(m,)) for m in ("nats-1", "nats-2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(150)
    assert not errors, errors
    assert set(results) == {"nats-1", "nats-2"}


# --- the CLI end to end: refusal, and the fingerprint in the evidence bundle ---------------

def _drill(plane: ControlPlane, tmp: Path, *args: str) -> Any:
    import os
    import subprocess
    import sys

    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "DRILL_STATE_DIR": str(tmp)}
    env.pop("DRILL_KUBE_CONTEXTS", None)
    drill = Path(sys.executable).with_name("drill")
    return subprocess.run([str(drill), *args], capture_output=True, text=True, timeout=180,
                          env=env, cwd=ROOT_DIR, check=False)


ROOT_DIR = Path(__file__).resolve().parents[2]


def test_drill_run_refuses_a_context_not_on_the_allow_list(control_plane: ControlPlane,
                                                           stack: AppliedStack,
                                                           tmp_path: Path) -> None:
    out = _drill(control_plane, tmp_path, "run", "redis-sentinel-failover", "--target", "kind",
                 "--context", FOREIGN_CONTEXT, "--out", str(tmp_path / "reports"),
                 "--no-audit")
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "allow-list" in out.stdout + out.stderr
    assert not (tmp_path / "reports").exists()  # nothing written, nothing touched


def test_drill_run_on_the_applied_stack(control_plane: ControlPlane, stack: AppliedStack,
                                        tmp_path: Path) -> None:
    _check_run_records_fingerprint(control_plane, tmp_path)


def test_drill_run_records_the_cluster_fingerprint(control_plane: ControlPlane,
                                           stack: AppliedStack,
                                                   tmp_path: Path) -> None:
    """Runs last: it deletes the finished feast-apply Job (the run must not need it)."""
    control_plane.kubectl("-n", NAMESPACE, "delete", "job", "feast-apply",
                          "--cascade=foreground", "--ignore-not-found", "--wait=true")
    _check_run_records_fingerprint(control_plane, tmp_path)


def _check_run_records_fingerprint(control_plane: ControlPlane, tmp_path: Path) -> None:
    """`drill run --target kind --dry-run` on the testbed: preflight passes (every member is a
    Ready pod), the steady state cannot hold (no data plane on kwok: the probes reach no
    server), and the bundle's journal records the context and the cluster fingerprint."""
    reports = tmp_path / "reports"
    out = _drill(control_plane, tmp_path, "run", "redis-sentinel-failover", "--target", "kind",
                 "--context", CONTEXT, "--out", str(reports), "--dry-run", "--no-audit")
    assert out.returncode in (1, 3), (out.returncode, out.stdout, out.stderr)
    journals = list(reports.glob("*/journal.jsonl"))
    assert len(journals) == 1, (out.stdout, out.stderr)
    start = next(json.loads(line) for line in journals[0].read_text().splitlines()
                 if json.loads(line).get("event") == "run-start")
    env = start.get("environment") or start.get("data", {}).get("environment")
    assert env, start
    target = make_target(control_plane, tmp_path)
    try:
        fp = target.fingerprint()
    finally:
        target.close()
    assert env["target"] == "kind" and env["context"] == CONTEXT
    assert env["cluster_fingerprint"] == fp["cluster_fingerprint"]
    assert env["kube_system_uid"] == fp["kube_system_uid"]
    assert env["server_version"] == "v1.35.4"


def test_recover_on_kind_undoes_a_dead_drills_isolation(control_plane: ControlPlane,
                                                        stack: AppliedStack,
                                                        tmp_path: Path) -> None:
    """A drill died (its PID is gone) after isolating redis-1: `drill recover --target kind`
    replays the journaled undo against the real API server and clears the kind lock; a
    second recover finds nothing to do."""
    import subprocess
    import sys

    from drillrunner.engine.lock import TargetLock
    from drillrunner.evidence.journal import Journal
    from drillrunner.targets.kind import faults

    target = make_target(control_plane, tmp_path / "unused")
    try:
        ctx, undos = make_ctx(target)
        faults.isolate_member(ctx, service="redis", member="redis-1")
        assert target.is_isolated(target.member("redis", "redis-1"))
        journal_path = tmp_path / "run" / "journal.jsonl"
        journal_path.parent.mkdir()
        journal = Journal(journal_path)
        action, args = undos[0]
        journal.append("undo-intent", scenario="died", undo_id=1, action=action, args=args)
        journal.close()
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
        kind_state = tmp_path / "kind" / CONTEXT  # state_dir()/kind/<context>
        lock = TargetLock(kind_state, "died-run", journal_path)
        lock.acquire()
        held = json.loads(lock.path.read_text())
        held["pid"] = int(dead.stdout)  # a process that has exited
        lock.path.write_text(json.dumps(held))

        refused = _drill(control_plane, tmp_path, "run", "redis-sentinel-failover", "--target",
                         "kind", "--context", CONTEXT, "--no-audit", "--out",
                         str(tmp_path / "reports"))
        assert refused.returncode != 0
        assert f"drill recover --target kind --context {CONTEXT}" in \
            refused.stdout + refused.stderr

        out = _drill(control_plane, tmp_path, "recover", "--target", "kind", "--context",
                     CONTEXT)
        assert out.returncode == 0, (out.stdout, out.stderr)
        assert "kind.rejoin_member" in out.stdout and "1 undo(s) replayed" in out.stdout
        assert not target.is_isolated(target.member("redis", "redis-1"))
        assert not lock.path.exists()
        again = _drill(control_plane, tmp_path, "recover", "--target", "kind", "--context",
                       CONTEXT)
        assert again.returncode == 0 and "nothing to recover" in again.stdout
    finally:
        target.resume(target.member("redis", "redis-1"))
        target.close()


def test_credential_store_for_external_secrets(control_plane: ControlPlane,
                                               stack: AppliedStack) -> None:
    """deploy/kind/vault.yaml and the random Secret, as `drill cluster up` creates them, on
    the real API server: the SecretStore's ServiceAccount may read exactly that Secret (the
    API server's own authorizer answers), nothing else; a second run keeps the passwords."""
    from kubernetes import client

    from drillrunner.targets.kind.addons import VAULT_KEYS, ensure_vault_secret

    control_plane.kubectl("apply", "--server-side", "-f", str(ROOT_DIR / "deploy/kind/vault.yaml"))
    api = core(control_plane)
    ensure_vault_secret(api)
    first = api.read_namespaced_secret("drill-credentials", "drill-vault").data
    assert sorted(first) == sorted(VAULT_KEYS)
    assert ensure_vault_secret(api) is False
    assert api.read_namespaced_secret("drill-credentials", "drill-vault").data == first

    authz = client.AuthorizationV1Api(control_plane.api)

    def allowed(verb: str, name: str, namespace: str = "drill-vault") -> bool:
        review = authz.create_subject_access_review({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "system:serviceaccount:drill:drill-secret-reader",
                     "resourceAttributes": {"namespace": namespace, "verb": verb,
                                            "resource": "secrets", "name": name}}})
        return bool(review.status.allowed)

    assert allowed("get", "drill-credentials")
    assert not allowed("get", "other-secret")
    assert not allowed("delete", "drill-credentials")
    assert not allowed("get", "drill-credentials", namespace="drill")

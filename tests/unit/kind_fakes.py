"""Fake Kubernetes API objects implementing exactly the methods the kind target calls.

The boundary is the `kubernetes` client's interface (CoreV1Api, AppsV1Api,
NetworkingV1Api, VersionApi); the objects returned are the client's own models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import (
    V1Container,
    V1ContainerPort,
    V1Node,
    V1ObjectMeta,
    V1Pod,
    V1PodCondition,
    V1PodSpec,
    V1PodStatus,
)
from kubernetes.client.rest import ApiException

from drillrunner.targets.kind.apis import KubeApis

STACK = {"app.kubernetes.io/part-of": "drill-stack"}
# service -> its kind adapter, as services.registry gives them to the kind target
ADAPTERS = {"timescaledb": "drillrunner.services.timescaledb.kind:KindPostgresOps",
            "redis": "drillrunner.services.redis.kind:KindRedisOps",
            "kafka": "drillrunner.services.kafka.kind:KindKafkaOps",
            "nats": "drillrunner.services.nats.kind:KindNatsOps",
            "feast": "drillrunner.services.feast.kind:KindFeastOps",
            "oms": "drillrunner.services.oms.kind:KindOmsOps"}


def pod(name: str, service: str, kind: str = "server", *, port: int = 6379,
        ready: bool = True, node: str = "drill-worker", sts: bool = True,
        uid: str | None = None, hold: str | None = None, running: bool = False) -> V1Pod:
    """A member pod; `hold` is the hold file it declares (annotation drill.dev/hold-file),
    `running` gives it a running container status."""
    from kubernetes.client import V1ContainerState, V1ContainerStateRunning, V1ContainerStatus

    labels = {**STACK, "app.kubernetes.io/name": service, "drill.dev/member-kind": kind}
    if sts:
        labels["statefulset.kubernetes.io/pod-name"] = name
    cond = V1PodCondition(type="Ready", status="True" if ready else "False")
    return V1Pod(
        metadata=V1ObjectMeta(name=name, namespace="drill", labels=labels,
                              uid=uid or f"uid-{name}",
                              annotations={"drill.dev/hold-file": hold} if hold else None),
        spec=V1PodSpec(node_name=node, containers=[V1Container(
            name=service, image=f"{service}:1", ports=[V1ContainerPort(container_port=port)])]),
        status=V1PodStatus(phase="Running", conditions=[cond], pod_ip="10.244.1.5",
                           container_statuses=[V1ContainerStatus(
                               name=service, image=f"{service}:1", image_id="", ready=ready,
                               restart_count=0,
                               state=V1ContainerState(running=V1ContainerStateRunning()))]
                           if running else None))


def _matches(labels: dict[str, str] | None, selector: str | None) -> bool:
    if not selector:
        return True
    want = dict(part.split("=", 1) for part in selector.split(","))
    return all((labels or {}).get(k) == v for k, v in want.items())


@dataclass
class Listing:
    items: list[Any]


@dataclass
class Cluster:
    """The state the fakes share, and every call made, in order."""

    pods: dict[str, V1Pod] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    configmaps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # plain values
    statefulsets: list[Any] = field(default_factory=list)
    nodes: list[str] = field(default_factory=lambda: ["drill-control-plane", "drill-worker"])
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)
    recreate: bool = False  # a controller recreating deleted pods under the same name

    def log(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((method, args, kwargs))

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


class FakeCore:
    def __init__(self, c: Cluster) -> None:
        self.c = c

    def read_namespaced_pod(self, name: str, namespace: str) -> V1Pod:
        self.c.log("read_namespaced_pod", name, namespace)
        if name not in self.c.pods:
            raise ApiException(status=404, reason="Not Found")
        return self.c.pods[name]

    def list_namespaced_pod(self, namespace: str, label_selector: str | None = None) -> Listing:
        self.c.log("list_namespaced_pod", namespace, label_selector=label_selector)
        return Listing([p for p in self.c.pods.values()
                        if _matches(p.metadata.labels, label_selector)])

    def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> None:
        self.c.log("delete_namespaced_pod", name, namespace, **kwargs)
        old = self.c.pods.pop(name, None)
        if old is None:
            raise ApiException(status=404, reason="Not Found")
        if self.c.recreate:
            new = pod(name, old.metadata.labels["app.kubernetes.io/name"],
                      uid=old.metadata.uid + "-new",
                      hold=(old.metadata.annotations or {}).get("drill.dev/hold-file"),
                      running=bool(old.status.container_statuses))
            self.c.pods[name] = new

    def patch_namespaced_pod(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        self.c.log("patch_namespaced_pod", name, namespace, body)
        labels = self.c.pods[name].metadata.labels
        for k, v in body["metadata"]["labels"].items():
            if v is None:
                labels.pop(k, None)
            else:
                labels[k] = v

    def read_namespaced_pod_log(self, name: str, namespace: str, **kwargs: Any) -> str:
        self.c.log("read_namespaced_pod_log", name, namespace, **kwargs)
        return "line1\nline2\n"

    def read_namespaced_config_map(self, name: str, namespace: str) -> Any:
        self.c.log("read_namespaced_config_map", name, namespace)
        if name not in self.c.configmaps:
            raise ApiException(status=404, reason="Not Found")
        from kubernetes.client import V1ConfigMap

        return V1ConfigMap(data=dict(self.c.configmaps[name]))

    def patch_namespaced_config_map(self, name: str, namespace: str,
                                    body: dict[str, Any]) -> None:
        self.c.log("patch_namespaced_config_map", name, namespace, body)
        for k, v in body["data"].items():
            if v is None:
                self.c.configmaps[name].pop(k, None)
            else:
                self.c.configmaps[name][k] = v

    def read_namespaced_secret(self, name: str, namespace: str) -> Any:
        self.c.log("read_namespaced_secret", name, namespace)
        if name not in self.c.secrets:
            raise ApiException(status=404, reason="Not Found")
        import base64

        from kubernetes.client import V1Secret

        return V1Secret(data={k: base64.b64encode(v.encode()).decode()
                              for k, v in self.c.secrets[name].items()})

    def connect_get_namespaced_pod_exec(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("only called through kubernetes.stream.stream")

    def read_namespace(self, name: str) -> Any:
        self.c.log("read_namespace", name)
        from kubernetes.client import V1Namespace

        return V1Namespace(metadata=V1ObjectMeta(name=name, uid="ks-uid-1234"))

    def list_node(self) -> Listing:
        self.c.log("list_node")
        return Listing([V1Node(metadata=V1ObjectMeta(name=n)) for n in self.c.nodes])


class FakeApps:
    def __init__(self, c: Cluster) -> None:
        self.c = c

    def list_namespaced_stateful_set(self, namespace: str,
                                     label_selector: str | None = None) -> Listing:
        self.c.log("list_namespaced_stateful_set", namespace, label_selector=label_selector)
        return Listing([s for s in self.c.statefulsets
                        if _matches(s.metadata.labels, label_selector)])

    def read_namespaced_stateful_set(self, name: str, namespace: str) -> Any:
        self.c.log("read_namespaced_stateful_set", name, namespace)
        for s in self.c.statefulsets:
            if s.metadata.name == name:
                return s
        raise ApiException(status=404, reason="Not Found")

    def patch_namespaced_stateful_set(self, name: str, namespace: str,
                                      body: dict[str, Any]) -> None:
        self.c.log("patch_namespaced_stateful_set", name, namespace, body)
        sts = self.read_namespaced_stateful_set(name, namespace)
        if "replicas" in body.get("spec", {}):
            sts.spec.replicas = body["spec"]["replicas"]

    def list_namespaced_deployment(self, namespace: str,
                                   label_selector: str | None = None) -> Listing:
        self.c.log("list_namespaced_deployment", namespace, label_selector=label_selector)
        return Listing([])


class FakeNetworking:
    def __init__(self, c: Cluster) -> None:
        self.c = c

    def create_namespaced_network_policy(self, namespace: str, body: dict[str, Any]) -> None:
        self.c.log("create_namespaced_network_policy", namespace, body)
        name = body["metadata"]["name"]
        if name in self.c.policies:
            raise ApiException(status=409, reason="AlreadyExists")
        self.c.policies[name] = body

    def delete_namespaced_network_policy(self, name: str, namespace: str) -> None:
        self.c.log("delete_namespaced_network_policy", name, namespace)
        if self.c.policies.pop(name, None) is None:
            raise ApiException(status=404, reason="Not Found")

    def read_namespaced_network_policy(self, name: str, namespace: str) -> dict[str, Any]:
        self.c.log("read_namespaced_network_policy", name, namespace)
        if name not in self.c.policies:
            raise ApiException(status=404, reason="Not Found")
        return self.c.policies[name]


class FakeVersion:
    def __init__(self, c: Cluster) -> None:
        self.c = c

    def get_code(self) -> Any:
        self.c.log("get_code")
        from kubernetes.client import VersionInfo

        return VersionInfo(git_version="v1.33.1", build_date="", compiler="", git_commit="",
                           git_tree_state="", go_version="", major="1", minor="33",
                           platform="linux/amd64")


class ExplodingApi:
    """Any use is a test failure: proves nothing was called."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"API call {name} made before the allow-list check")


# (pod, container, argv, stdin) -> (returncode, stdout, stderr)
ExecHandler = Callable[[str, str, list[str], str | None], tuple[int, str, str]]


def status_text(code: int) -> str:
    """What the API server sends on an exec's status channel for exit code `code`."""
    import json

    if code == 0:
        return json.dumps({"metadata": {}, "status": "Success"})
    return json.dumps({"metadata": {}, "status": "Failure",
                       "message": f"command terminated with non-zero exit code: {code}",
                       "reason": "NonZeroExitCode",
                       "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}})


class FakeExec:
    """The object kubernetes.stream.stream returns, answering from an ExecHandler."""

    def __init__(self, c: Cluster, handler: ExecHandler, pod_name: str,
                 kwargs: dict[str, Any]) -> None:
        self.c, self.handler, self.pod_name, self.kwargs = c, handler, pod_name, kwargs
        self.stdin: str | None = "" if kwargs.get("stdin") else None
        self.result: tuple[int, str, str] | None = None

    def write_stdin(self, data: str) -> None:
        assert self.stdin is not None, "stdin written without stdin=True"
        self.stdin += data

    def close_channel(self, channel: int) -> None:
        assert channel == 0

    def run_forever(self, timeout: float | None = None) -> None:
        argv = list(self.kwargs["command"])
        self.c.log("exec", self.pod_name, argv)
        self.result = self.handler(self.pod_name, self.kwargs["container"], argv, self.stdin)

    def is_open(self) -> bool:
        return False

    def read_channel(self, channel: int) -> str:
        """The status channel (3) as the API server writes it: a metav1.Status."""
        assert channel == 3 and self.result is not None
        return status_text(self.result[0])

    def read_stdout(self) -> str:
        return self.result[1] if self.result else ""

    def read_stderr(self) -> str:
        return self.result[2] if self.result else ""

    def close(self) -> None:
        pass


def apis(c: Cluster, exec_handler: ExecHandler | None = None) -> KubeApis:
    def stream(_fn: Any, name: str, _ns: str, **kwargs: Any) -> Any:
        if exec_handler is None:
            raise AssertionError("exec not expected")
        if name not in c.pods:
            raise ApiException(status=404, reason="Not Found")
        return FakeExec(c, exec_handler, name, kwargs)

    return KubeApis(core=FakeCore(c), apps=FakeApps(c), networking=FakeNetworking(c),
                    version=FakeVersion(c), stream=stream)


def local_shell(pod_name: str, container: str, argv: list[str],
                stdin: str | None) -> tuple[int, str, str]:
    """An ExecHandler that really runs the command here (for scripts on temp paths)."""
    import subprocess

    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60,
                          check=False)
    return done.returncode, done.stdout, done.stderr


# -- Appended for the Feast and OMS kind ops: Secrets written back, StatefulSets whose
# -- replica count creates and deletes their pods, and annotations on them. --------------

class SecretPatchingCore(FakeCore):
    """FakeCore that also patches Secrets (values base64 in the body, kept plain)."""

    def patch_namespaced_secret(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        import base64

        self.c.log("patch_namespaced_secret", name, namespace, sorted(body["data"]))
        if name not in self.c.secrets:
            raise ApiException(status=404, reason="Not Found")
        for k, v in body["data"].items():
            self.c.secrets[name][k] = base64.b64decode(v).decode()


class ScalingApps(FakeApps):
    """FakeApps whose StatefulSets act like their controller: patching `replicas` removes
    or creates the ordinals' pods at once; metadata annotations are merged (None: removed)."""

    def patch_namespaced_stateful_set(self, name: str, namespace: str,
                                      body: dict[str, Any]) -> None:
        super().patch_namespaced_stateful_set(name, namespace, body)
        sts = self.read_namespaced_stateful_set(name, namespace)
        notes = body.get("metadata", {}).get("annotations")
        if notes is not None:
            merged = dict(sts.metadata.annotations or {})
            for k, v in notes.items():
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            sts.metadata.annotations = merged
        if "replicas" in body.get("spec", {}):
            labels = sts.spec.template.metadata.labels
            port = sts.spec.template.spec.containers[0].ports[0].container_port
            for existing in [p for p in self.c.pods if p.startswith(f"{name}-")]:
                ordinal = existing.removeprefix(f"{name}-")
                if ordinal.isdigit() and int(ordinal) >= sts.spec.replicas:
                    del self.c.pods[existing]
            for i in range(sts.spec.replicas):
                if f"{name}-{i}" not in self.c.pods:
                    new = pod(f"{name}-{i}", labels["app.kubernetes.io/name"],
                              labels.get("drill.dev/member-kind", "server"), port=port,
                              uid=f"uid-{name}-{i}-{len(self.c.calls)}")
                    self.c.pods[new.metadata.name] = new


def statefulset(name: str, service: str, replicas: int, *, port: int,
                kind: str = "server", annotations: dict[str, str] | None = None) -> Any:
    """A StatefulSet of `service` whose template the ScalingApps fake creates pods from."""
    from kubernetes.client import (
        V1LabelSelector,
        V1PodTemplateSpec,
        V1StatefulSet,
        V1StatefulSetSpec,
    )

    labels = {**STACK, "app.kubernetes.io/name": service, "drill.dev/member-kind": kind}
    tmpl = V1PodTemplateSpec(
        metadata=V1ObjectMeta(labels=labels),
        spec=V1PodSpec(containers=[V1Container(name=service, image=f"{service}:1", ports=[
            V1ContainerPort(container_port=port)])]))
    return V1StatefulSet(
        metadata=V1ObjectMeta(name=name, namespace="drill", labels=dict(labels),
                              annotations=dict(annotations or {})),
        spec=V1StatefulSetSpec(replicas=replicas, service_name=name, template=tmpl,
                               selector=V1LabelSelector(match_labels=labels)))


def scaling_apis(c: Cluster, exec_handler: ExecHandler | None = None) -> KubeApis:
    """apis() with SecretPatchingCore and ScalingApps."""
    base = apis(c, exec_handler)
    return KubeApis(core=SecretPatchingCore(c), apps=ScalingApps(c), networking=base.networking,
                    version=base.version, stream=base.stream)


# -- Appended for the TimescaleDB point-in-time restore: bare pods created from a body
# -- dict (no controller: a deleted one is not recreated). -------------------------------

class BarePodCore(FakeCore):
    """FakeCore that also creates pods from a Pod body dict: Running, its container started,
    NOT Ready (a test flips `conditions[0].status`), IP `bare_ip`. Deleting a pod it
    created never recreates it, whatever `Cluster.recreate` says."""

    bare_ip = "10.244.3.30"

    def __init__(self, c: Cluster) -> None:
        super().__init__(c)
        self.bare: set[str] = set()

    def create_namespaced_pod(self, namespace: str, body: dict[str, Any]) -> V1Pod:
        from kubernetes.client import V1ContainerState, V1ContainerStateRunning, V1ContainerStatus

        self.c.log("create_namespaced_pod", namespace, body)
        meta = body["metadata"]
        name = meta["name"]
        if name in self.c.pods:
            raise ApiException(status=409, reason="AlreadyExists")
        containers = [V1Container(name=c["name"], image=c["image"], ports=[
            V1ContainerPort(container_port=p["containerPort"], name=p.get("name"))
            for p in c.get("ports", [])]) for c in body["spec"]["containers"]]
        statuses = [V1ContainerStatus(name=c.name, image=c.image, image_id="", ready=False,
                                      restart_count=0,
                                      state=V1ContainerState(running=V1ContainerStateRunning()))
                    for c in containers]
        new = V1Pod(
            metadata=V1ObjectMeta(name=name, namespace=namespace,
                                  labels=dict(meta.get("labels") or {}),
                                  uid=f"uid-{name}-{len(self.c.calls)}"),
            spec=V1PodSpec(node_name="drill-worker", containers=containers),
            status=V1PodStatus(phase="Running", pod_ip=self.bare_ip,
                               conditions=[V1PodCondition(type="Ready", status="False")],
                               container_statuses=statuses))
        self.c.pods[name] = new
        self.bare.add(name)
        return new

    def read_namespaced_persistent_volume_claim(self, name: str, namespace: str) -> Any:
        """Ephemeral claims (<pod>-<volume>) exist while their bare pod does."""
        self.c.log("read_namespaced_persistent_volume_claim", name, namespace)
        if not any(name.startswith(f"{pod}-") for pod in self.bare & set(self.c.pods)):
            raise ApiException(status=404, reason="Not Found")
        return {"metadata": {"name": name}}

    def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> None:
        if name not in self.bare:
            super().delete_namespaced_pod(name, namespace, **kwargs)
            return
        self.c.log("delete_namespaced_pod", name, namespace, **kwargs)
        self.bare.discard(name)
        if self.c.pods.pop(name, None) is None:
            raise ApiException(status=404, reason="Not Found")

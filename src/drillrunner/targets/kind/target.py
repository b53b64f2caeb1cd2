"""KindTarget: the Target protocol on a Kubernetes cluster, through the `kubernetes` client.

Members are pods found by labels (`app.kubernetes.io/name=<service>`,
`app.kubernetes.io/part-of=drill-stack`, `drill.dev/member-kind=server|sentinel`);
a StatefulSet's missing ordinals are listed too, so a killed member stays addressable
while it is recreated. Every change this target makes is undoable by name and is
idempotent: kill (the controller recreates the pod; `start` waits for it), pause
(NetworkPolicy `drill-isolate-<pod>`, removed by `resume`), node stop / pause (docker,
undone by `start_node`), ConfigMap keys (`set_config` returns the previous value for
`restore_config`).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import shlex
import socket
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.core.waiting import poll_until
from drillrunner.targets.base import MemberRef, Signal
from drillrunner.targets.kind.apis import KubeApis, connect, http_status, own_client
from drillrunner.targets.kind.forward import PortForwarder
from drillrunner.targets.kind.nodes import DockerNodes
from drillrunner.targets.kind.safety import check_context

SERVICES = ("timescaledb", "redis", "kafka", "nats", "feast", "oms")
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
STACK = "drill-stack"
MEMBER_KIND_LABEL = "drill.dev/member-kind"
STS_POD_LABEL = "statefulset.kubernetes.io/pod-name"  # set by the StatefulSet controller
DRILL_POD_LABEL = "drill.dev/pod-name"  # added by pause() to pods without the one above
PORT_ANNOTATION = "drill.dev/port"  # optional: which container port is the member's address
ISOLATE_PREFIX = "drill-isolate-"
HOLD_ANNOTATION = "drill.dev/hold-file"  # a file on the pod's volume that keeps it down
HOLD_CONTAINER = "drill-hold"  # the init container that waits while the hold file exists
ISOLATED_LABEL = "drill.dev/isolated"  # the allow policies of deploy/k8s skip pods with it
DEFAULT_NAMESPACE = "drill"

# service -> "module:Class" of its kind operations; the rest get the generic KindDeployment.
DEPLOYMENTS = {"redis": "drillrunner.services.redis.kind:KindRedisOps",
               "timescaledb": "drillrunner.services.timescaledb.kind:KindPostgresOps",
               "kafka": "drillrunner.services.kafka.kind:KindKafkaOps",
               "nats": "drillrunner.services.nats.kind:KindNatsOps",
               "feast": "drillrunner.services.feast.kind:KindFeastOps",
               "oms": "drillrunner.services.oms.kind:KindOmsOps"}


class ExecResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    returncode: int
    stdout: str
    stderr: str



class KindTarget:
    """The stack in namespace `namespace` of kube context `context`.

    Construct with `KindTarget.connect(kubeconfig=..., context=...)`, or directly with
    `KubeApis` (fakes in unit tests). The context is checked against the allow-list in
    both cases before any API call.
    """

    name = "kind"

    def __init__(self, apis: KubeApis, *, context: str, namespace: str = DEFAULT_NAMESPACE,
                 state: Path | None = None, nodes: DockerNodes | None = None,
                 forward: bool = True, cluster: str | None = None) -> None:
        self.context = check_context(context)
        self.apis = apis
        self.namespace = namespace
        self.cluster = cluster or context.removeprefix("kind-")
        self.nodes = nodes or DockerNodes(self.cluster)
        if state is None:
            from drillrunner.core.paths import state_dir

            state = state_dir() / "kind" / self.context
        self.state = state
        self._forwarder = PortForwarder(apis.core, namespace) if forward else None
        self._deployments: dict[str, Any] = {}

    @classmethod
    def connect(cls, kubeconfig: Path | None = None, context: str | None = None,
                namespace: str = DEFAULT_NAMESPACE, state: Path | None = None,
                forward: bool = True) -> KindTarget:
        """Refuse a context off the allow-list, then build the clients (no API call yet)."""
        name, apis = connect(kubeconfig, context)
        return cls(apis, context=name, namespace=namespace, state=state, forward=forward)

    def close(self) -> None:
        """Stop the port-forwards (the target's and any a service's ops opened)."""
        for ops in self._deployments.values():
            closer = getattr(ops, "close", None)
            if callable(closer):
                closer()
        if self._forwarder is not None:
            self._forwarder.close()

    # -- discovery ---------------------------------------------------------------------

    def _selector(self, service: str | None = None) -> str:
        parts = [f"{PART_OF_LABEL}={STACK}"]
        if service:
            parts.insert(0, f"{NAME_LABEL}={service}")
        return ",".join(parts)

    def _pod(self, name: str) -> Any | None:
        try:
            return self.apis.core.read_namespaced_pod(name, self.namespace)
        except Exception as exc:
            if http_status(exc) == 404:
                return None
            raise

    def _require_pod(self, member: MemberRef) -> Any:
        pod = self._pod(member.name)
        if pod is None:
            raise ActionFailed(f"{member.name}: no such pod in namespace {self.namespace}")
        return pod

    @staticmethod
    def _container_port(spec: Any, annotations: dict[str, str] | None) -> int:
        wanted = (annotations or {}).get(PORT_ANNOTATION)
        ports = [p for c in spec.containers for p in (c.ports or [])]
        for p in ports:
            if wanted and wanted in (str(p.container_port), p.name):
                return int(p.container_port)
        if wanted and wanted.isdigit():
            return int(wanted)
        if not ports:
            raise StackError("a drill-stack pod declares no container port")
        return int(ports[0].container_port)

    def _ref(self, service: str, name: str, labels: dict[str, str] | None, spec: Any,
             annotations: dict[str, str] | None, pod_ip: str | None) -> MemberRef:
        port = self._container_port(spec, annotations)
        kind = (labels or {}).get(MEMBER_KIND_LABEL, "server")
        if self._forwarder is not None:
            return MemberRef(service=service, name=name, host="127.0.0.1",
                             port=self._forwarder.local_port(name, port), kind=kind)
        return MemberRef(service=service, name=name, host=pod_ip or name, port=port, kind=kind)

    def members(self, service: str) -> list[MemberRef]:
        """Pods labelled for `service`, plus a StatefulSet's ordinals that have no pod now."""
        selector = self._selector(service)
        refs: dict[str, MemberRef] = {}
        for pod in self.apis.core.list_namespaced_pod(self.namespace,
                                                      label_selector=selector).items:
            md = pod.metadata
            if any(o.kind == "Job" for o in (getattr(md, "owner_references", None) or [])):
                continue  # a one-off task (e.g. feast apply), not a member of the service
            refs[md.name] = self._ref(service, md.name, md.labels, pod.spec, md.annotations,
                                      pod.status.pod_ip if pod.status else None)
        for sts in self.apis.apps.list_namespaced_stateful_set(
                self.namespace, label_selector=selector).items:
            tmpl = sts.spec.template
            for i in range(sts.spec.replicas or 0):
                name = f"{sts.metadata.name}-{i}"
                if name not in refs:
                    refs[name] = self._ref(service, name, tmpl.metadata.labels, tmpl.spec,
                                           tmpl.metadata.annotations, None)
        return [refs[n] for n in sorted(refs)]

    def member(self, service: str, name: str) -> MemberRef:
        for m in self.members(service):
            if m.name == name:
                return m
        raise StackError(f"{service} has no member {name!r} in namespace {self.namespace}")

    def services(self) -> list[str]:
        """The stack's services that have pods or workloads in the namespace."""
        selector = self._selector()
        found: set[str] = set()
        for listing in (self.apis.core.list_namespaced_pod(self.namespace,
                                                           label_selector=selector),
                        self.apis.apps.list_namespaced_stateful_set(self.namespace,
                                                                    label_selector=selector),
                        self.apis.apps.list_namespaced_deployment(self.namespace,
                                                                  label_selector=selector)):
            found.update((item.metadata.labels or {}).get(NAME_LABEL, "")
                         for item in listing.items)
        return [s for s in SERVICES if s in found]

    def deployment(self, service: str) -> Any:
        """Per-service operations (DEPLOYMENTS), each implementing its driver's ops
        protocol (services/<service>/ops.py) with pods, exec and the API."""
        if service not in SERVICES:
            raise StackError(f"the kind target has no service {service!r}")
        if service not in self._deployments:
            from drillrunner.targets.kind.deployments import KindDeployment

            factory: Any = KindDeployment
            if service in DEPLOYMENTS:
                module, cls = DEPLOYMENTS[service].split(":")
                factory = getattr(importlib.import_module(module), cls)
            self._deployments[service] = factory(self, service)
        return self._deployments[service]

    def deployments(self) -> list[Any]:
        services = self.services()
        if not services:
            raise StackError(f"no drill stack in namespace {self.namespace} of kube context "
                             f"{self.context}: run 'drill cluster up'")
        return [self.deployment(s) for s in services]

    # -- state -------------------------------------------------------------------------

    def pid(self, member: MemberRef) -> int | None:
        return None  # processes live in pods on other hosts: no local PID

    @staticmethod
    def _ready(pod: Any) -> bool:
        if pod is None or pod.metadata.deletion_timestamp is not None:
            return False
        if pod.status is None or pod.status.phase != "Running":
            return False
        return any(c.type == "Ready" and c.status == "True"
                   for c in (pod.status.conditions or []))

    def is_running(self, member: MemberRef) -> bool:
        """Running and Ready, and not being deleted."""
        return self._ready(self._pod(member.name))

    def node_of(self, member: MemberRef) -> str:
        node = self._require_pod(member).spec.node_name
        if not node:
            raise ActionFailed(f"{member.name} is not scheduled on a node")
        return str(node)

    # -- pod faults --------------------------------------------------------------------

    def kill(self, member: MemberRef, signal: Signal = Signal.KILL, *,
             hold: bool = True) -> None:
        """Delete the pod, with grace 0 (KILL) or its own grace period (TERM), and wait
        until that pod (by UID) is gone. Its controller creates a new one.

        A pod that declares a hold file (annotation drill.dev/hold-file) is held down
        first: the file is created on its volume, and the new pod waits (its start gate, or
        the `drill-hold` init container) until `start` removes it. Killed members then stay
        down until their undo, as on the local target, instead of being back in seconds."""
        pod = self._pod(member.name)
        if pod is None:
            return  # already gone
        path = _hold_file(pod) if hold else None  # hold=False: the caller held it already
        if path:
            self._touch_hold(member, path)
        uid = pod.metadata.uid
        grace = pod.spec.termination_grace_period_seconds or 30
        try:
            if signal is Signal.KILL:
                self.apis.core.delete_namespaced_pod(member.name, self.namespace,
                                                     grace_period_seconds=0)
            else:
                self.apis.core.delete_namespaced_pod(member.name, self.namespace)
        except Exception as exc:
            if http_status(exc) != 404:
                if path:  # not deleted: a hold left on a running pod would outlive drill
                    with suppress(Exception):
                        self.exec(member, ["rm", "-f", path])
                raise

        def gone() -> bool:
            now = self._pod(member.name)
            return now is None or now.metadata.uid != uid

        poll_until(gone, timeout=float(grace) + 30.0, interval=0.2,
                   what=f"pod {member.name} to be deleted")

    def _touch_hold(self, member: MemberRef, path: str) -> None:
        """Create the hold file in the running main container. A container that just
        died (its status lags) cannot hold: that is fine, as long as it is not running."""
        pod = self._pod(member.name)
        if pod is None or not _running(pod, self._container(pod)):
            return
        try:
            self.sh(member, f"touch {shlex.quote(path)}",
                    what=f"holding {member.name} down ({path})")
        except ActionFailed:
            pod = self._pod(member.name)
            if pod is not None and _running(pod, self._container(pod)):
                raise

    def start(self, member: MemberRef, timeout: float = 300.0) -> None:
        """Pods are restarted by their controller: release a held pod (remove its hold file,
        from whichever of its containers waits) and wait until it is Ready again."""
        released: set[str] = set()

        def ready() -> bool:
            pod = self._pod(member.name)
            if pod is None or pod.metadata.deletion_timestamp is not None:
                return False
            if self._ready(pod):
                return True
            hold = _hold_file(pod)
            if hold and pod.metadata.uid not in released:
                waiting = next((c for c in (HOLD_CONTAINER, self._container(pod))
                                if _running(pod, c)), None)
                if waiting is not None:
                    try:
                        result = self.exec(member, ["rm", "-f", hold], container=waiting)
                    except ActionFailed:
                        return False  # the container changed meanwhile: next poll
                    if result.returncode != 0:
                        raise ActionFailed(f"{member.name}: releasing {hold} failed: "
                                           f"{result.stderr.strip() or result.returncode}")
                    released.add(pod.metadata.uid)
            return False

        poll_until(ready, timeout=timeout, interval=0.5, what=f"pod {member.name} to be Ready")

    def pause(self, member: MemberRef) -> None:
        """Isolate the pod: label it `drill.dev/isolated` (every allow policy of deploy/k8s
        selects only pods without it: policies add up, so a deny policy alone would not
        cut anything) and add a NetworkPolicy selecting it with no ingress or egress rule.

        The node's conntrack entries for the pod's IP are then deleted, so connections opened
        before are cut too. Unlike SIGSTOP the processes keep running (probes from the node
        may still pass); `pause_node` freezes a whole node container instead.
        """
        pod = self._pod(member.name)
        if pod is None:
            raise ActionFailed(f"{member.name}: no such pod to isolate")
        labels = pod.metadata.labels or {}
        key = STS_POD_LABEL if STS_POD_LABEL in labels else DRILL_POD_LABEL
        wanted = {ISOLATED_LABEL: "true"}
        if key == DRILL_POD_LABEL:
            wanted[key] = member.name
        if any(labels.get(k) != v for k, v in wanted.items()):
            self.apis.core.patch_namespaced_pod(member.name, self.namespace,
                                                {"metadata": {"labels": wanted}})
        try:
            self.apis.networking.create_namespaced_network_policy(
                self.namespace, isolation_policy(member.name, self.namespace, key))
        except Exception as exc:
            if http_status(exc) != 409:  # already isolated: idempotent
                raise
        # Established connections keep their verdict in conntrack: drop them so the cut
        # applies to open flows too (replication links, client pools). Needs the node to be
        # a docker container of this cluster (every kind node is); elsewhere (a bare API
        # server with simulated nodes) only new flows are cut.
        ip = pod.status.pod_ip if pod.status else None
        if ip and pod.spec.node_name and self.nodes.is_node(pod.spec.node_name):
            self.nodes.forget_flows(pod.spec.node_name, ip)

    def resume(self, member: MemberRef) -> None:
        """Remove the isolation policy and the labels pause added; idempotent."""
        try:
            self.apis.networking.delete_namespaced_network_policy(
                ISOLATE_PREFIX + member.name, self.namespace)
        except Exception as exc:
            if http_status(exc) != 404:
                raise
        pod = self._pod(member.name)
        added = [k for k in (ISOLATED_LABEL, DRILL_POD_LABEL)
                 if pod is not None and k in (pod.metadata.labels or {})]
        if added:
            try:
                self.apis.core.patch_namespaced_pod(
                    member.name, self.namespace,
                    {"metadata": {"labels": dict.fromkeys(added)}})
            except Exception as exc:
                if http_status(exc) != 404:
                    raise

    def is_isolated(self, member: MemberRef) -> bool:
        try:
            self.apis.networking.read_namespaced_network_policy(
                ISOLATE_PREFIX + member.name, self.namespace)
        except Exception as exc:
            if http_status(exc) == 404:
                return False
            raise
        return True

    def pause_process(self, member: MemberRef, pid: int) -> None:
        """SIGSTOP one process inside the pod (a PID as the container sees it)."""
        self._signal_in_pod(member, pid, "STOP")

    def resume_process(self, member: MemberRef, pid: int) -> None:
        if self._pod(member.name) is not None:  # gone: nothing left to resume
            self._signal_in_pod(member, pid, "CONT", missing_ok=True)

    def _signal_in_pod(self, member: MemberRef, pid: int, sig: str,
                       missing_ok: bool = False) -> None:
        script = f"kill -{sig} {int(pid)}" + (" 2>/dev/null || true" if missing_ok else "")
        result = self.exec(member, ["sh", "-c", script], timeout=30.0)
        if result.returncode != 0:
            raise ActionFailed(f"{member.name}: kill -{sig} {pid} failed: "
                               f"{result.stderr.strip() or result.returncode}")

    # -- node faults (docker) ----------------------------------------------------------

    def node_names(self) -> list[str]:
        return sorted(n.metadata.name for n in self.apis.core.list_node().items)

    def _own_node(self, node: str) -> str:
        if node not in self.node_names():
            raise ActionFailed(f"{node!r} is not a node of kube context {self.context}")
        return node

    def stop_node(self, node: str) -> None:
        """`docker stop` the node container (a node failure); undo with start_node."""
        self.nodes.stop(self._own_node(node))

    def pause_node(self, node: str) -> None:
        """`docker pause` the node container: every pod on it freezes (a stalled VM)."""
        self.nodes.pause(self._own_node(node))

    def start_node(self, node: str) -> None:
        """Undo of stop_node and pause_node; idempotent."""
        self.nodes.start(self._own_node(node))

    # -- exec, logs, configuration -----------------------------------------------------

    @staticmethod
    def _container(pod: Any) -> str:
        default = (pod.metadata.annotations or {}).get("kubectl.kubernetes.io/default-container")
        return str(default or pod.spec.containers[0].name)

    def exec(self, member: MemberRef, argv: Sequence[str], *, timeout: float = 60.0,
             container: str | None = None, stdin: str | None = None) -> ExecResult:
        """Run `argv` in the member's container through the API server (no kubectl).

        `stdin` is sent and then closed (the v5 channel protocol, Kubernetes >= 1.30);
        binary data goes through `write_file`, which needs no stdin at all."""
        pod = self._require_pod(member)
        with own_client(self.apis.core) as core:
            resp = self.apis.stream(
                core.connect_get_namespaced_pod_exec, member.name, self.namespace,
                command=list(argv), container=container or self._container(pod), stderr=True,
                stdin=stdin is not None, stdout=True, tty=False, _preload_content=False)
        try:
            if stdin is not None:
                resp.write_stdin(stdin)
                resp.close_channel(0)  # EOF on stdin
            resp.run_forever(timeout=timeout)
            if resp.is_open():
                raise ActionFailed(f"{member.name}: {argv[0]} did not finish in {timeout:g}s")
            code = exit_code(resp.read_channel(ERROR_CHANNEL))
            if isinstance(code, str):
                raise ActionFailed(f"{member.name}: {argv[0]}: {code}")
            return ExecResult(returncode=code, stdout=resp.read_stdout() or "",
                              stderr=resp.read_stderr() or "")
        finally:
            resp.close()

    def sh(self, member: MemberRef, script: str, *, timeout: float = 60.0,
           what: str | None = None) -> str:
        """Run a shell script in the member's container; its stdout, or ActionFailed
        naming `what` (default: the script) with the tail of stderr."""
        result = self.exec(member, ["sh", "-c", script], timeout=timeout)
        if result.returncode != 0:
            tail = (result.stderr.strip() or result.stdout.strip())[-400:]
            raise ActionFailed(f"{member.name}: {what or script} failed "
                               f"(exit {result.returncode}): {tail}")
        return result.stdout

    def read_file(self, member: MemberRef, path: str, *, timeout: float = 120.0) -> bytes:
        """A file's bytes from the container (base64 over exec: binary-safe)."""
        out = self.sh(member, f"base64 < {shlex.quote(path)}", timeout=timeout,
                      what=f"reading {path}")
        return base64.b64decode("".join(out.split()))

    def write_file(self, member: MemberRef, path: str, data: bytes, *,
                   chunk: int = 48 * 1024, timeout: float = 120.0) -> None:
        """Write `data` to `path` in the container, in base64 chunks small enough for one
        argv each (no stdin needed: works with every exec protocol version)."""
        tmp = shlex.quote(path + ".drill-part")
        self.sh(member, f": > {tmp}", what=f"creating {path}")
        encoded = base64.b64encode(data).decode()
        for i in range(0, len(encoded), chunk):
            piece = encoded[i:i + chunk]
            self.sh(member, f"printf %s '{piece}' | base64 -d >> {tmp}", timeout=timeout,
                    what=f"writing {path}")
        self.sh(member, f"mv {tmp} {shlex.quote(path)}", what=f"writing {path}")

    def secret_value(self, name: str, key: str) -> str:
        """One key of a Secret in the namespace (for connecting; never logged)."""
        try:
            secret = self.apis.core.read_namespaced_secret(name, self.namespace)
        except Exception as exc:
            if http_status(exc) == 404:
                raise StackError(f"no Secret {name} in namespace {self.namespace}") from None
            raise
        value = (secret.data or {}).get(key)
        if value is None:
            raise StackError(f"Secret {name} has no key {key!r}")
        return base64.b64decode(value).decode()

    def scale(self, statefulset: str, replicas: int) -> int:
        """Set a StatefulSet's replicas; returns the previous count (for the undo)."""
        sts = self.apis.apps.read_namespaced_stateful_set(statefulset, self.namespace)
        previous = int(sts.spec.replicas or 0)
        if previous != replicas:
            self.apis.apps.patch_namespaced_stateful_set(
                statefulset, self.namespace, {"spec": {"replicas": replicas}})
        return previous

    def log_tail(self, member: MemberRef, lines: int = 50) -> str:
        pod = self._require_pod(member)
        text = self.apis.core.read_namespaced_pod_log(
            member.name, self.namespace, container=self._container(pod), tail_lines=lines)
        return str(text)

    def member_config(self, member: MemberRef) -> dict[str, str]:
        """Each container's command line and every ConfigMap the pod uses (never Secrets)."""
        pod = self._pod(member.name)
        if pod is None:
            return {"pod": "(no pod at collection time)\n"}
        out: dict[str, str] = {}
        names: list[str] = []
        for c in pod.spec.containers:
            out[f"{c.name}.argv"] = " ".join([*(c.command or []), *(c.args or [])]) + "\n"
            names += [e.config_map_ref.name for e in (c.env_from or []) if e.config_map_ref]
            names += [e.value_from.config_map_key_ref.name for e in (c.env or [])
                      if e.value_from and e.value_from.config_map_key_ref]
        names += [v.config_map.name for v in (pod.spec.volumes or []) if v.config_map]
        for name in dict.fromkeys(names):
            for key, value in sorted((self.read_config(name) or {}).items()):
                out[f"{name}.{key}"] = value
        return out

    def read_config(self, configmap: str) -> dict[str, str] | None:
        try:
            cm = self.apis.core.read_namespaced_config_map(configmap, self.namespace)
        except Exception as exc:
            if http_status(exc) == 404:
                return None
            raise
        return dict(cm.data or {})

    def set_config(self, configmap: str, key: str, value: str) -> str | None:
        """Set one ConfigMap key; returns its previous value (None: absent) for
        restore_config. Pods see it when they remount or restart."""
        data = self.read_config(configmap)
        if data is None:
            raise ActionFailed(f"no ConfigMap {configmap} in namespace {self.namespace}")
        self.apis.core.patch_namespaced_config_map(configmap, self.namespace,
                                                   {"data": {key: value}})
        return data.get(key)

    def restore_config(self, configmap: str, key: str, previous: str | None) -> None:
        """Put a key back as it was (delete it if it was absent); idempotent."""
        data = self.read_config(configmap)
        if data is None or data.get(key) == previous:
            return
        self.apis.core.patch_namespaced_config_map(configmap, self.namespace,
                                                   {"data": {key: previous}})

    # -- evidence ----------------------------------------------------------------------

    def artifacts_dir(self) -> Path:
        path = self.state / "backups"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fingerprint(self) -> dict[str, str]:
        """What identifies the cluster: kube-system's UID (new for every cluster), the API
        server's version and the node names, and a digest of the three."""
        uid = str(self.apis.core.read_namespace("kube-system").metadata.uid)
        version = str(self.apis.version.get_code().git_version)
        nodes = ",".join(self.node_names())
        digest = hashlib.sha256(f"{uid}|{version}|{nodes}".encode()).hexdigest()[:16]
        return {"kube_system_uid": uid, "server_version": version, "nodes": nodes,
                "cluster_fingerprint": digest}

    def describe(self) -> dict[str, str]:
        return {"target": self.name, "context": self.context, "namespace": self.namespace,
                "host": socket.gethostname(), "state_dir": str(self.state),
                **self.fingerprint()}


def _hold_file(pod: Any) -> str | None:
    value = (pod.metadata.annotations or {}).get(HOLD_ANNOTATION)
    return str(value) if value else None


def _running(pod: Any, container: str) -> bool:
    """Whether `container` (an init container or a regular one) is running in the pod."""
    status = pod.status
    statuses = [*((status.init_container_statuses or []) if status else []),
                *((status.container_statuses or []) if status else [])]
    return any(c.name == container and c.state is not None and c.state.running is not None
               for c in statuses)


ERROR_CHANNEL = 3  # the exec websocket's status channel


def exit_code(status_text: str | None) -> int | str:
    """The command's exit code from the exec status (a metav1.Status), or the reason it
    did not run (the client's own `returncode` raises ValueError on any status that is
    not an exit code, e.g. a missing executable)."""
    import yaml

    status = yaml.safe_load(status_text or "") or {}
    if not isinstance(status, dict) or status.get("status", "Success") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
            return int(cause["message"])
    return str(status.get("message") or status.get("reason") or "exec failed")


def isolation_policy(pod: str, namespace: str, label: str) -> dict[str, Any]:
    """A NetworkPolicy selecting one pod, denying all its ingress and egress."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": ISOLATE_PREFIX + pod, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "drill",
                                "drill.dev/isolates": pod}},
        "spec": {"podSelector": {"matchLabels": {label: pod}},
                 "policyTypes": ["Ingress", "Egress"]},
    }

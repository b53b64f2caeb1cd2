"""Pods of the stack by label, and members as the kind target addresses them.

Members are pods found by labels (`app.kubernetes.io/name=<service>`,
`app.kubernetes.io/part-of=drill-stack`, `drill.dev/member-kind=server|sentinel`); a
StatefulSet's missing ordinals are listed too, so a killed member stays addressable while
it is recreated.
"""

from __future__ import annotations

from typing import Any

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.targets.base import MemberRef
from drillrunner.targets.kind.apis import KubeApis, http_status
from drillrunner.targets.kind.forward import PortForwarder
from drillrunner.targets.pods import PodInfo

NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"
STACK = "drill-stack"
MEMBER_KIND_LABEL = "drill.dev/member-kind"
PORT_ANNOTATION = "drill.dev/port"  # optional: which container port is the member's address


def ready(pod: Any) -> bool:
    """Running and Ready, and not being deleted."""
    if pod is None or pod.metadata.deletion_timestamp is not None:
        return False
    if pod.status is None or pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True"
               for c in (pod.status.conditions or []))


def running(pod: Any, container: str) -> bool:
    """Whether `container` (an init container or a regular one) is running in the pod."""
    status = pod.status
    statuses = [*((status.init_container_statuses or []) if status else []),
                *((status.container_statuses or []) if status else [])]
    return any(c.name == container and c.state is not None and c.state.running is not None
               for c in statuses)


def main_container(pod: Any) -> str:
    default = (pod.metadata.annotations or {}).get("kubectl.kubernetes.io/default-container")
    return str(default or pod.spec.containers[0].name)


def crashed_exit_code(pod: Any) -> int | None:
    """The exit code of the pod's crashed container (terminated, or waiting after a
    failed run); None while it runs or has not run yet."""
    for cs in (pod.status.container_statuses if pod.status else None) or []:
        state, last = cs.state, cs.last_state
        if state is not None and state.terminated is not None \
                and state.terminated.exit_code:
            return int(state.terminated.exit_code)
        if state is not None and state.waiting is not None and last is not None \
                and last.terminated is not None and last.terminated.exit_code:
            return int(last.terminated.exit_code)
    return None


def pod_info(pod: Any) -> PodInfo:
    status = pod.status
    statuses = (status.container_statuses if status else None) or []
    return PodInfo(
        name=str(pod.metadata.name), uid=str(pod.metadata.uid),
        phase=status.phase if status else None, ready=ready(pod),
        deleting=pod.metadata.deletion_timestamp is not None,
        containers_running=(status is not None and status.phase == "Running"
                            and all(s.state is not None and s.state.running is not None
                                    for s in statuses)),
        node=pod.spec.node_name or None, ip=status.pod_ip if status else None,
        image=str(pod.spec.containers[0].image or ""), crashed_exit_code=crashed_exit_code(pod))


def container_port(spec: Any, annotations: dict[str, str] | None) -> int:
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


class PodLookup:
    """Pods and members in one namespace; the base of the kind target's parts."""

    def __init__(self, apis: KubeApis, namespace: str, forwarder: PortForwarder | None) -> None:
        self.apis = apis
        self.namespace = namespace
        self._forwarder = forwarder

    def forwarder(self) -> PortForwarder | None:
        """The target's port-forwards (closed with the target); None: in-cluster addresses."""
        return self._forwarder

    def selector(self, service: str | None = None) -> str:
        """The label selector of the stack's objects (of one service)."""
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

    def pod(self, name: str) -> PodInfo | None:
        """The pod's state now; None if there is no pod of that name."""
        found = self._pod(name)
        return None if found is None else pod_info(found)

    def pods(self, service: str) -> list[PodInfo]:
        """The pods labelled for `service` (members, restore copies, one-off tasks)."""
        return [pod_info(p) for p in self.apis.core.list_namespaced_pod(
            self.namespace, label_selector=self.selector(service)).items]

    def pod_exists(self, name: str) -> bool:
        return self._pod(name) is not None

    def pod_ready(self, name: str) -> bool:
        return ready(self._pod(name))

    def is_running(self, member: MemberRef) -> bool:
        """Running and Ready, and not being deleted."""
        return ready(self._pod(member.name))

    def _ref(self, service: str, name: str, labels: dict[str, str] | None, spec: Any,
             annotations: dict[str, str] | None, pod_ip: str | None) -> MemberRef:
        port = container_port(spec, annotations)
        kind = (labels or {}).get(MEMBER_KIND_LABEL, "server")
        if self._forwarder is not None:
            return MemberRef(service=service, name=name, host="127.0.0.1",
                             port=self._forwarder.local_port(name, port), kind=kind)
        return MemberRef(service=service, name=name, host=pod_ip or name, port=port, kind=kind)

    def members(self, service: str) -> list[MemberRef]:
        """Pods labelled for `service`, plus a StatefulSet's ordinals that have no pod now."""
        selector = self.selector(service)
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

    def node_of(self, member: MemberRef) -> str:
        node = self._require_pod(member).spec.node_name
        if not node:
            raise ActionFailed(f"{member.name} is not scheduled on a node")
        return str(node)

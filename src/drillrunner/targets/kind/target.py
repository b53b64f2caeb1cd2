"""KindTarget: the Target protocol on a Kubernetes cluster, through the `kubernetes` client.

Its parts, by role: lookup.py (pods and members by label), execution.py (exec, files,
logs), isolation.py (pause / resume by NetworkPolicy), hold.py (kill / start, members
kept down), objects.py (ConfigMaps, Secrets, replica counts). Every change this target
makes is undoable by name and is idempotent: kill (the controller recreates the pod;
`start` waits for it), pause (NetworkPolicy `drill-isolate-<pod>`, removed by `resume`),
node stop / pause (docker, undone by `start_node`), ConfigMap keys (`set_config` returns
the previous value for `restore_config`).

Services are not known here: the caller passes `adapters` (service -> "module:Class" of
its kind adapter, imported when first used), in the order `services()` lists them.
"""

from __future__ import annotations

import hashlib
import importlib
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.targets.base import MemberRef
from drillrunner.targets.kind.apis import KubeApis, connect
from drillrunner.targets.kind.deployments import KindDeployment
from drillrunner.targets.kind.execution import ERROR_CHANNEL, exit_code
from drillrunner.targets.kind.forward import PortForwarder
from drillrunner.targets.kind.hold import HOLD_ANNOTATION, HOLD_CONTAINER, HoldDown
from drillrunner.targets.kind.isolation import (
    DRILL_POD_LABEL,
    ISOLATE_PREFIX,
    ISOLATED_LABEL,
    STS_POD_LABEL,
    Isolation,
    isolation_policy,
)
from drillrunner.targets.kind.lookup import (
    MEMBER_KIND_LABEL,
    NAME_LABEL,
    PART_OF_LABEL,
    PORT_ANNOTATION,
    STACK,
)
from drillrunner.targets.kind.nodes import DockerNodes
from drillrunner.targets.kind.objects import ClusterObjects
from drillrunner.targets.kind.safety import check_context
from drillrunner.targets.pods import ExecResult, KindPods

DEFAULT_NAMESPACE = "drill"

__all__ = ["DEFAULT_NAMESPACE", "DRILL_POD_LABEL", "ERROR_CHANNEL", "HOLD_ANNOTATION",
           "HOLD_CONTAINER", "ISOLATED_LABEL", "ISOLATE_PREFIX", "MEMBER_KIND_LABEL",
           "NAME_LABEL", "PART_OF_LABEL", "PORT_ANNOTATION", "STACK", "STS_POD_LABEL",
           "ExecResult", "KindTarget", "exit_code", "isolation_policy"]


class KindTarget(HoldDown, Isolation, ClusterObjects):
    """The stack in namespace `namespace` of kube context `context`.

    Construct with `KindTarget.connect(kubeconfig=..., context=..., adapters=...)`, or
    directly with `KubeApis` (fakes in unit tests). The context is checked against the
    allow-list in both cases before any API call.
    """

    name = "kind"

    def __init__(self, apis: KubeApis, *, context: str, adapters: Mapping[str, str],
                 namespace: str = DEFAULT_NAMESPACE, state: Path | None = None,
                 nodes: DockerNodes | None = None, forward: bool = True,
                 cluster: str | None = None) -> None:
        self.context = check_context(context)
        super().__init__(apis, namespace,
                         PortForwarder(apis.core, namespace) if forward else None)
        self.adapters = dict(adapters)
        self.cluster = cluster or context.removeprefix("kind-")
        self.nodes = nodes or DockerNodes(self.cluster)
        if state is None:
            from drillrunner.core.paths import state_dir

            state = state_dir() / "kind" / self.context
        self.state = state
        self._deployments: dict[str, Any] = {}

    @classmethod
    def connect(cls, kubeconfig: Path | None = None, context: str | None = None, *,
                adapters: Mapping[str, str], namespace: str = DEFAULT_NAMESPACE,
                state: Path | None = None, forward: bool = True) -> KindTarget:
        """Refuse a context off the allow-list, then build the clients (no API call yet)."""
        name, apis = connect(kubeconfig, context)
        return cls(apis, context=name, adapters=adapters, namespace=namespace, state=state,
                   forward=forward)

    def close(self) -> None:
        """Stop the port-forwards (the target's and any a service's ops opened)."""
        for ops in self._deployments.values():
            closer = getattr(ops, "close", None)
            if callable(closer):
                closer()
        if self._forwarder is not None:
            self._forwarder.close()

    # -- services ----------------------------------------------------------------------

    def services(self) -> list[str]:
        """The stack's services that have pods or workloads in the namespace."""
        selector = self.selector()
        found: set[str] = set()
        for listing in (self.apis.core.list_namespaced_pod(self.namespace,
                                                           label_selector=selector),
                        self.apis.apps.list_namespaced_stateful_set(self.namespace,
                                                                    label_selector=selector),
                        self.apis.apps.list_namespaced_deployment(self.namespace,
                                                                  label_selector=selector)):
            found.update((item.metadata.labels or {}).get(NAME_LABEL, "")
                         for item in listing.items)
        return [s for s in self.adapters if s in found]

    def deployment(self, service: str) -> Any:
        """Per-service operations: the adapter named in `adapters`, implementing its
        driver's ops protocol (services/<service>/ops.py) with pods, exec and the API."""
        if service not in self.adapters:
            raise StackError(f"the kind target has no service {service!r}")
        if service not in self._deployments:
            factory: Any = KindDeployment  # no adapter named: members and versions only
            if self.adapters[service]:
                module, _, cls = self.adapters[service].partition(":")
                factory = getattr(importlib.import_module(module), cls)
            pods: KindPods = self  # what every adapter is given
            self._deployments[service] = factory(pods, service)
        return self._deployments[service]

    def deployments(self) -> list[Any]:
        services = self.services()
        if not services:
            raise StackError(f"no drill stack in namespace {self.namespace} of kube context "
                             f"{self.context}: run 'drill cluster up'")
        return [self.deployment(s) for s in services]

    def pid(self, member: MemberRef) -> int | None:
        return None  # processes live in pods on other hosts: no local PID

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

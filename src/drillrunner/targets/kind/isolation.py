"""Pause and resume of a member on kind: the pod cut off the network by a NetworkPolicy."""

from __future__ import annotations

from typing import Any

from drillrunner.core.errors import ActionFailed
from drillrunner.targets.base import MemberRef
from drillrunner.targets.kind.apis import http_status
from drillrunner.targets.kind.lookup import PodLookup
from drillrunner.targets.kind.nodes import DockerNodes

STS_POD_LABEL = "statefulset.kubernetes.io/pod-name"  # set by the StatefulSet controller
DRILL_POD_LABEL = "drill.dev/pod-name"  # added by pause() to pods without the one above
ISOLATE_PREFIX = "drill-isolate-"
ISOLATED_LABEL = "drill.dev/isolated"  # the allow policies of deploy/k8s skip pods with it


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


class Isolation(PodLookup):
    """pause / resume / is_isolated; `nodes` drops the pod's open flows on its node."""

    nodes: DockerNodes

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

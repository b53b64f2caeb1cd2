"""The stack's manifests (deploy/k8s) on the testbed, and watch-based waits on its pods.

deploy/k8s uses two operators' resources (cert-manager's ClusterIssuer, External Secrets'
SecretStore and ExternalSecret). Their controllers do not run here, and their CRDs are not
on any package registry this machine reaches: schema-less stand-in CRDs
(`x-kubernetes-preserve-unknown-fields`) let the API server store those objects, so their
fields are NOT validated, and no Secret is ever produced from an ExternalSecret (kwok starts
no container, so no pod misses it).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Any

from tests.k8s.controlplane import ROOT, ControlPlane, pod_ready

MANIFESTS = ROOT / "deploy" / "k8s"
NAMESPACE = "drill"

# (group, version, kind, plural, scope)
STAND_IN_CRDS = (
    ("cert-manager.io", "v1", "ClusterIssuer", "clusterissuers", "Cluster"),
    ("external-secrets.io", "v1", "SecretStore", "secretstores", "Namespaced"),
    ("external-secrets.io", "v1", "ExternalSecret", "externalsecrets", "Namespaced"),
)


def stand_in_crd(group: str, version: str, kind: str, plural: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}",
                     "labels": {"drill.testbed/stand-in": "true"}},
        "spec": {"group": group, "scope": scope,
                 "names": {"kind": kind, "plural": plural, "singular": kind.lower(),
                           "listKind": f"{kind}List"},
                 "versions": [{"name": version, "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {
                                   "type": "object",
                                   "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


def install_stand_in_crds(plane: ControlPlane) -> None:
    from kubernetes import client

    from drillrunner.core.waiting import poll_until

    ext = client.ApiextensionsV1Api(plane.api)
    for crd in STAND_IN_CRDS:
        ext.create_custom_resource_definition(stand_in_crd(*crd))

    def established() -> bool:
        for crd in ext.list_custom_resource_definition(
                label_selector="drill.testbed/stand-in=true").items:
            conds = {c.type: c.status for c in (crd.status.conditions or [])}
            if conds.get("Established") != "True":
                return False
        return True

    poll_until(established, timeout=30, interval=0.2, what="stand-in CRDs established")


def render(plane: ControlPlane) -> str:
    """`kubectl kustomize deploy/k8s` (kustomize built into kubectl)."""
    return plane.kubectl("kustomize", str(MANIFESTS)).stdout


def without_holds(rendered: str) -> str:
    """The stack without the pods' drill.dev/hold-file annotation. kwok runs no container,
    so the kind target could not create a hold file in one (its exec has nowhere to run):
    kill would fail on the first exec. The hold is tested where exec works
    (tests/unit/test_kind_target.py; exec itself in test_exec_forward.py)."""
    import yaml

    docs = [d for d in yaml.safe_load_all(rendered) if d]
    for doc in docs:
        template = (doc.get("spec") or {}).get("template") or {}
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        annotations.pop("drill.dev/hold-file", None)
    return yaml.safe_dump_all(docs)


@dataclass
class AppliedStack:
    rendered: str
    documents: int
    apply_seconds: float
    ready_seconds: float
    how: str
    validation: subprocess.CompletedProcess[str]  # strict server-side dry run, before applying


def apply_stack(plane: ControlPlane) -> AppliedStack:
    """Server-side apply of the rendered stack through the kind target's own
    `server_side_apply`, then the kind target's own `wait_ready`."""
    import yaml

    from drillrunner.targets.kind.apis import connect
    from drillrunner.targets.kind.cluster import server_side_apply, wait_ready

    install_stand_in_crds(plane)
    rendered = render(plane)
    _, apis = connect(plane.kubeconfig, "kind-drill-testbed")
    # The namespace first, so that the dry run can check the namespaced objects in it.
    namespaces = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Namespace"]
    server_side_apply(apis, yaml.safe_dump_all(namespaces))
    # The API server itself checks every object: unknown or duplicate fields are errors.
    validation = plane.kubectl("apply", "--server-side", "--dry-run=server",
                               "--validate=strict", "--field-manager=drill-test", "-k",
                               str(MANIFESTS), check=False)
    t0 = time.monotonic()
    count = server_side_apply(apis, without_holds(rendered))
    t1 = time.monotonic()
    wait_ready(apis, timeout=180, on_ready=lambda name, n: None, namespace=NAMESPACE)
    t2 = time.monotonic()
    return AppliedStack(rendered=rendered, documents=count, apply_seconds=t1 - t0,
                        ready_seconds=t2 - t1, how="drillrunner.targets.kind.cluster."
                        "server_side_apply", validation=validation)


@dataclass
class Recreation:
    old_uid: str
    new_name: str
    new_uid: str
    scheduled_seconds: float  # fault -> new pod bound to a node
    ready_seconds: float  # fault -> new pod Ready
    node: str


def wait_replacement_ready(core: Any, *, namespace: str, label_selector: str,
                           old_uid: str, existing: set[str], resource_version: str,
                           since: float, timeout: float = 120.0) -> Recreation:
    """Watch pods (from `resource_version`, taken before the fault, so no event is missed)
    until a pod that did not exist before the fault (uid not in `existing`) is Ready; times
    are from `since` (monotonic)."""
    from kubernetes import watch

    scheduled: float | None = None
    w = watch.Watch()
    deadline = time.monotonic() + timeout
    rv = resource_version
    while time.monotonic() < deadline:
        remaining = max(1, int(deadline - time.monotonic()))
        for event in w.stream(core.list_namespaced_pod, namespace,
                              label_selector=label_selector, resource_version=rv,
                              timeout_seconds=remaining):
            pod = event["object"]
            rv = pod.metadata.resource_version
            if event["type"] == "DELETED" or pod.metadata.uid in existing:
                continue
            if scheduled is None and pod.spec.node_name:
                scheduled = time.monotonic() - since
            if pod_ready(pod):
                w.stop()
                ready = time.monotonic() - since
                return Recreation(old_uid=old_uid, new_name=pod.metadata.name,
                                  new_uid=pod.metadata.uid,
                                  scheduled_seconds=scheduled if scheduled is not None
                                  else ready, ready_seconds=ready,
                                  node=str(pod.spec.node_name))
    raise AssertionError(f"no Ready replacement for pod uid {old_uid} ({label_selector}) "
                         f"within {timeout:g} s")

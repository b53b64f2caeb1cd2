"""deploy/k8s/timescaledb against a REAL API server: Patroni's RBAC and the Services that
follow Patroni's role label.

The stack is applied as the other k8s tests apply it (tests/k8s/stack.py). No Patroni runs
(kwok starts no container), so this file plays Patroni's part through the API AS its
ServiceAccount (impersonation): what its Kubernetes DCS does (ConfigMaps named after the
scope, its own pod's `role` label) must be allowed, and anything broader refused by the
API server itself. The endpoint slices the real controller builds then show which pod
each Service routes to.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from drillrunner.core.waiting import poll_until
from tests.k8s.controlplane import ControlPlane
from tests.k8s.stack import NAMESPACE, AppliedStack

pytestmark = [pytest.mark.integration, pytest.mark.k8s]

SA = f"system:serviceaccount:{NAMESPACE}:timescaledb"
SCOPE = "timescaledb"  # PATRONI_SCOPE
PATRONI_OBJECTS = [f"{SCOPE}-{k}" for k in ("leader", "config", "sync", "failover")]
MEMBERS = ("timescaledb-0", "timescaledb-1")


def allowed(plane: ControlPlane, verb: str, resource: str, *, name: str = "",
            namespace: str = NAMESPACE, subresource: str = "") -> bool:
    """The API server's SubjectAccessReview for the ServiceAccount."""
    from kubernetes import client

    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=SA, groups=["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}",
                         "system:authenticated"],
        resource_attributes=client.V1ResourceAttributes(
            namespace=namespace, verb=verb, resource=resource, name=name or None,
            subresource=subresource or None)))
    answer = client.AuthorizationV1Api(plane.api).create_subject_access_review(review)
    return bool(answer.status.allowed)


@pytest.fixture
def as_patroni(control_plane: ControlPlane, stack: AppliedStack) -> Iterator[Any]:
    """A CoreV1Api acting as the ServiceAccount; Patroni's objects and labels are
    removed afterwards (as the admin)."""
    from kubernetes import client

    api = control_plane.api_client()
    api.set_default_header("Impersonate-User", SA)
    api.set_default_header("Impersonate-Group", "system:serviceaccounts")
    yield client.CoreV1Api(api)
    api.close()
    admin = client.CoreV1Api(control_plane.api)
    for name in PATRONI_OBJECTS:
        try:
            admin.delete_namespaced_config_map(name, NAMESPACE)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
    for pod in MEMBERS:
        admin.patch_namespaced_pod(pod, NAMESPACE, {"metadata": {"labels": {"role": None}}})


def test_patroni_can_do_what_its_dcs_needs(control_plane: ControlPlane,
                                           stack: AppliedStack) -> None:
    for verb in ("create", "list", "watch"):
        assert allowed(control_plane, verb, "configmaps"), verb
    for name in PATRONI_OBJECTS:
        for verb in ("get", "patch"):
            assert allowed(control_plane, verb, "configmaps", name=name), (verb, name)
    for verb in ("list", "watch"):
        assert allowed(control_plane, verb, "pods"), verb
    for pod in MEMBERS:
        assert allowed(control_plane, "patch", "pods", name=pod), pod


def test_patroni_can_do_nothing_broader(control_plane: ControlPlane,
                                        stack: AppliedStack) -> None:
    """No Secret, no other ConfigMap changed, nothing deleted or created but its
    ConfigMaps, no exec, no endpoints or Services, nothing outside its namespace."""
    refused = [
        ("get", "secrets", ""), ("list", "secrets", ""), ("watch", "secrets", ""),
        ("get", "secrets", "timescaledb-credentials"),
        ("patch", "configmaps", "timescaledb-patroni"),  # the stack's own configuration
        ("update", "configmaps", "timescaledb-patroni"),
        ("get", "configmaps", "oms-config"),
        ("delete", "configmaps", "timescaledb-leader"),
        ("deletecollection", "configmaps", ""),
        ("delete", "pods", "timescaledb-0"), ("create", "pods", ""),
        ("patch", "pods", "oms-0"), ("patch", "pods", "redis-0"), ("patch", "pods", ""),
        ("get", "endpoints", ""), ("patch", "endpoints", "timescaledb"),
        ("create", "services", ""), ("patch", "services", "timescaledb-primary"),
        ("patch", "statefulsets", "timescaledb"),
        ("create", "serviceaccounts", ""), ("create", "roles", ""),
    ]
    for verb, resource, name in refused:
        assert not allowed(control_plane, verb, resource, name=name), (verb, resource, name)
    assert not allowed(control_plane, "create", "pods", name="timescaledb-0",
                       subresource="exec")
    assert not allowed(control_plane, "list", "configmaps", namespace="default")
    assert not allowed(control_plane, "patch", "pods", namespace="kube-system")


def test_the_review_can_fail(control_plane: ControlPlane, stack: AppliedStack) -> None:
    """The reviews above judge the real binding: the same questions for a ServiceAccount
    without it are refused."""
    from kubernetes import client

    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=f"system:serviceaccount:{NAMESPACE}:default",
        resource_attributes=client.V1ResourceAttributes(
            namespace=NAMESPACE, verb="patch", resource="pods")))
    answer = client.AuthorizationV1Api(control_plane.api).create_subject_access_review(review)
    assert not answer.status.allowed


def test_statefulset_runs_as_the_bound_serviceaccount(control_plane: ControlPlane,
                                                      stack: AppliedStack) -> None:
    from kubernetes import client

    # The API server's strict validation of the stack found nothing wrong with these.
    out = (stack.validation.stdout + stack.validation.stderr).splitlines()
    assert any("statefulset.apps/timescaledb " in line for line in out), out
    assert not [line for line in out if "timescaledb" in line and any(
        w in line.lower() for w in ("error", "unknown field", "invalid", "warning"))]
    sts = client.AppsV1Api(control_plane.api).read_namespaced_stateful_set(SCOPE, NAMESPACE)
    assert sts.spec.template.spec.service_account_name == "timescaledb"
    binding = client.RbacAuthorizationV1Api(control_plane.api).read_namespaced_role_binding(
        "timescaledb-patroni", NAMESPACE)
    assert [(s.kind, s.name, s.namespace) for s in binding.subjects] == [
        ("ServiceAccount", "timescaledb", NAMESPACE)]
    pods = client.CoreV1Api(control_plane.api).list_namespaced_pod(
        NAMESPACE, label_selector=f"cluster-name={SCOPE}").items
    assert sorted(p.metadata.name for p in pods) == list(MEMBERS)
    assert {p.spec.service_account_name for p in pods} == {"timescaledb"}


def _routes(control_plane: ControlPlane, service: str) -> set[str]:
    """The pods the Service's endpoint slices name (the real controller's work)."""
    from kubernetes import client

    slices = client.DiscoveryV1Api(control_plane.api).list_namespaced_endpoint_slice(
        NAMESPACE, label_selector=f"kubernetes.io/service-name={service}").items
    return {e.target_ref.name for s in slices for e in (s.endpoints or [])
            if e.target_ref is not None}


def test_services_follow_patronis_labels(control_plane: ControlPlane, stack: AppliedStack,
                                         as_patroni: Any) -> None:
    """Patroni's requests as the ServiceAccount: its leader lock and config objects, then
    the role labels on its pods; the primary and replicas Services follow the labels."""
    from kubernetes import client

    core = as_patroni
    p0, p1 = MEMBERS
    assert _routes(control_plane, "timescaledb-primary") == set()  # no Patroni label yet
    for name in PATRONI_OBJECTS:
        core.create_namespaced_config_map(NAMESPACE, {"metadata": {
            "name": name, "labels": {"app.kubernetes.io/name": "timescaledb",
                                     "cluster-name": SCOPE}}})
    core.patch_namespaced_config_map(f"{SCOPE}-leader", NAMESPACE, {"metadata": {
        "annotations": {"leader": p0, "ttl": "30"}}})
    assert core.read_namespaced_config_map(f"{SCOPE}-leader", NAMESPACE
                                           ).metadata.annotations["leader"] == p0
    assert {c.metadata.name for c in core.list_namespaced_config_map(
        NAMESPACE, label_selector=f"cluster-name={SCOPE}").items} == set(PATRONI_OBJECTS)
    # ...and nothing else, though the same calls.
    for call in (lambda: core.read_namespaced_secret("timescaledb-credentials", NAMESPACE),
                 lambda: core.patch_namespaced_config_map(
                     "timescaledb-patroni", NAMESPACE, {"metadata": {"labels": {"x": "y"}}}),
                 lambda: core.delete_namespaced_config_map(f"{SCOPE}-leader", NAMESPACE)):
        with pytest.raises(client.ApiException) as refused:
            call()
        assert refused.value.status == 403

    def label(pod: str, role: str) -> None:
        core.patch_namespaced_pod(pod, NAMESPACE, {"metadata": {"labels": {"role": role}}})

    label(p0, "master")
    label(p1, "replica")
    poll_until(lambda: _routes(control_plane, "timescaledb-primary") == {p0}, timeout=30,
               interval=0.2, what="timescaledb-primary to route to the leader")
    poll_until(lambda: _routes(control_plane, "timescaledb-replicas") == {p1}, timeout=30,
               interval=0.2, what="timescaledb-replicas to route to the replica")
    assert _routes(control_plane, "timescaledb-backup") == {p0}
    # A failover as Patroni does it: the new leader labels itself; the old one's label
    # goes once its Patroni runs again as a replica.
    label(p1, "master")
    label(p0, "replica")
    poll_until(lambda: _routes(control_plane, "timescaledb-primary") == {p1}, timeout=30,
               interval=0.2, what="timescaledb-primary to follow the new leader")
    poll_until(lambda: _routes(control_plane, "timescaledb-replicas") == {p0}, timeout=30,
               interval=0.2, what="timescaledb-replicas to follow the demoted leader")
    # Patroni 4's default leader value (`primary`) would route nowhere: the manifest pins
    # `master`, which the Service selects.
    label(p1, "primary")
    poll_until(lambda: _routes(control_plane, "timescaledb-primary") == set(), timeout=30,
               interval=0.2, what="timescaledb-primary to drop an unlabelled leader")

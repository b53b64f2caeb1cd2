"""What deploy/k8s needs in a cluster before it is applied (deploy/k8s/README.md):

- the two project images, built with docker and loaded into the kind nodes;
- ingress-nginx (the kind provider's manifest) and cert-manager, applied from their pinned
  upstream release manifests, and External Secrets Operator from its pinned Helm chart;
- the credential store External Secrets reads on kind: namespace `drill-vault` with Secret
  `drill-credentials` (random values generated here, once; never printed or written to disk)
  and the Role letting `drill/drill-secret-reader` read it (deploy/kind/vault.yaml).

Versions are pinned so a cluster built today and one built next quarter run the same add-ons.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drillrunner.core.errors import StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.targets.kind.apis import http_status


@dataclass(frozen=True)
class Image:
    tag: str
    dockerfile: str  # relative to the project root, which is the build context


IMAGES = (Image("drillrunner/oms:local", "deploy/k8s/oms/Dockerfile"),
          Image("drillrunner/feast:local", "deploy/k8s/feast/Dockerfile"))


@dataclass(frozen=True)
class Manifest:
    name: str
    url: str
    namespace: str  # where its Deployments run (waited for)


INGRESS_NGINX = Manifest(
    "ingress-nginx",
    "https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.12.1/deploy/"
    "static/provider/kind/deploy.yaml", "ingress-nginx")
CERT_MANAGER = Manifest(
    "cert-manager",
    "https://github.com/cert-manager/cert-manager/releases/download/v1.16.2/cert-manager.yaml",
    "cert-manager")
MANIFESTS = (INGRESS_NGINX, CERT_MANAGER)

# External Secrets ships its controller as a Helm chart only. 1.x serves external-secrets.io/v1,
# the version deploy/k8s uses (v1beta1 stopped being served in 0.17).
ESO_CHART = ("external-secrets", "https://charts.external-secrets.io", "1.1.1")
ESO_NAMESPACE = "external-secrets"

VAULT_NAMESPACE = "drill-vault"
VAULT_SECRET = "drill-credentials"
VAULT_KEYS = ("postgres-password", "replication-password", "feast-password", "oms-password")
VAULT_MANIFEST = "deploy/kind/vault.yaml"



def ensure_vault_secret(core: Any, generate: Callable[[], str] | None = None) -> bool:
    """Create Secret drill-vault/drill-credentials with random values unless it exists
    (re-running `drill cluster up` must not rotate passwords the data was created with).
    Returns True if created. The namespace must exist (deploy/kind/vault.yaml)."""
    try:
        core.read_namespaced_secret(VAULT_SECRET, VAULT_NAMESPACE)
        return False
    except Exception as exc:
        if http_status(exc) != 404:
            raise
    make = generate or (lambda: secrets.token_urlsafe(24))
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": VAULT_SECRET, "namespace": VAULT_NAMESPACE,
                         "labels": {"app.kubernetes.io/part-of": "drill-stack"}},
            "stringData": {key: make() for key in VAULT_KEYS}}
    try:
        core.create_namespaced_secret(VAULT_NAMESPACE, body)
    except Exception as exc:
        if http_status(exc) == 409:
            return False  # created meanwhile: keep theirs
        raise StackError(f"creating Secret {VAULT_NAMESPACE}/{VAULT_SECRET} failed "
                         f"(HTTP {http_status(exc)})") from None
    return True


def deployments_ready(apps: Any, namespace: str) -> list[str]:
    """The Deployments of `namespace` that are not fully available ([] when all are; a
    namespace without Deployments counts as not ready yet)."""
    items = apps.list_namespaced_deployment(namespace).items
    if not items:
        return [f"{namespace}: no Deployment yet"]
    return [f"{namespace}/{d.metadata.name} {d.status.available_replicas or 0}/"
            f"{d.spec.replicas or 0}" for d in items
            if (d.status.available_replicas or 0) < (d.spec.replicas or 0)]


def wait_namespaces(apps: Any, namespaces: list[str], timeout: float) -> None:
    """Poll until every Deployment of these namespaces is available (operators must answer
    their webhooks before deploy/k8s can create Issuers and ExternalSecrets)."""
    try:
        poll_until(lambda: not any(deployments_ready(apps, ns) for ns in namespaces),
                   timeout=timeout, interval=2.0, what="the add-ons to be available")
    except WaitTimeout as exc:
        pending = [p for ns in namespaces for p in deployments_ready(apps, ns)]
        raise StackError(f"{exc}; not available: {', '.join(pending)}") from None


def vault_manifest(root: Path) -> Path:
    path = root / VAULT_MANIFEST
    if not path.is_file():
        raise StackError(f"{path} is missing")
    return path

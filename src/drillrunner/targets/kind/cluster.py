"""`drill cluster up | down | status`: the kind cluster and the stack's manifests.

External tools (docker, kind, kubectl or kustomize) are run as subprocesses; each missing
one is a MissingBinary naming what to install. Waiting for workloads polls the API.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drillrunner.core.errors import MissingBinary, StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.targets.kind.safety import check_context

DEFAULT_CLUSTER = "drill"
NAMESPACE = "drill"

INSTALL = {
    "docker": "Docker (https://docs.docker.com/engine/install/)",
    "kind": "kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation, "
            "e.g. 'go install sigs.k8s.io/kind@latest')",
    "kubectl": "kubectl (https://kubernetes.io/docs/tasks/tools/) or kustomize",
    "helm": "helm (https://helm.sh/docs/intro/install/), for the External Secrets chart",
}

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=900, check=False)


@dataclass
class Cluster:
    """One kind cluster named `name` (kube context `kind-<name>`)."""

    root: Path
    name: str = DEFAULT_CLUSTER
    run: Runner = _run
    which: Callable[[str], str | None] = shutil.which
    calls: list[list[str]] = field(default_factory=list)

    @property
    def context(self) -> str:
        return f"kind-{self.name}"

    def need(self, *tools: str) -> None:
        missing = [t for t in tools if self.which(t) is None]
        if missing:
            raise MissingBinary(f"{', '.join(missing)} not found: install "
                                + "; ".join(INSTALL[t] for t in missing))

    def _cmd(self, *argv: str) -> str:
        self.calls.append(list(argv))
        try:
            out = self.run(argv)
        except (OSError, subprocess.SubprocessError) as exc:
            raise StackError(f"{' '.join(argv[:3])}: {exc}") from None
        if out.returncode != 0:
            last = (out.stderr.strip() or out.stdout.strip()).splitlines()[-1:] or ["?"]
            raise StackError(f"{' '.join(argv[:3])} failed: {last[0]}")
        return out.stdout

    def check_tools(self) -> None:
        """docker and kind installed, and the docker daemon answering."""
        self.need("docker", "kind")
        self._cmd("docker", "info", "--format", "{{.ServerVersion}}")

    def exists(self) -> bool:
        return self.name in self._cmd("kind", "get", "clusters").split()

    def create(self) -> bool:
        """Create the cluster from kind-config.yaml unless it exists; True if created."""
        check_context(self.context)
        self.check_tools()
        if self.exists():
            return False
        config = self.root / "kind-config.yaml"
        if not config.is_file():
            raise StackError(f"{config} is missing")
        self._cmd("kind", "create", "cluster", "--config", str(config), "--name", self.name,
                  "--wait", "120s")
        return True

    def apply(self, apis: Any) -> str:
        """Apply deploy/k8s: `kubectl apply -k` when kubectl exists, else `kustomize build`
        and server-side apply through the client. Returns how it was applied."""
        manifests = self.root / "deploy" / "k8s"
        if not manifests.is_dir():
            raise StackError(f"{manifests} is missing")
        if self.which("kubectl"):
            self._cmd("kubectl", "--context", self.context, "apply", "-k", str(manifests))
            return "kubectl apply -k"
        if self.which("kustomize") is None:
            self.need("kubectl")  # neither: name what to install
        rendered = self._cmd("kustomize", "build", str(manifests))
        server_side_apply(apis, rendered)
        return "server-side apply"

    def load_images(self) -> Iterator[str]:
        """docker build the project's images (context: the project root) and load them into
        the kind nodes (there is no registry); yields each tag once it is loaded."""
        from drillrunner.targets.kind.addons import IMAGES

        for image in IMAGES:
            self._cmd("docker", "build", "-f", str(self.root / image.dockerfile), "-t",
                      image.tag, str(self.root))
            self._cmd("kind", "load", "docker-image", image.tag, "--name", self.name)
            yield image.tag

    def _apply_file(self, apis: Any, source: str) -> None:
        """Apply one manifest (a URL or a path): kubectl when present, else the client."""
        if self.which("kubectl"):
            self._cmd("kubectl", "--context", self.context, "apply", "--server-side",
                      "--force-conflicts", "-f", source)
            return
        if source.startswith("https://"):
            import urllib.request

            try:
                with urllib.request.urlopen(source, timeout=120) as resp:
                    text = resp.read().decode()
            except OSError as exc:
                raise StackError(f"downloading {source}: {exc}") from None
        else:
            text = Path(source).read_text()
        server_side_apply(apis, text)

    def install_addons(self, apis: Any, timeout: float = 600.0) -> Iterator[str]:
        """ingress-nginx, cert-manager and External Secrets (pinned), then the credential
        store; yields each step as it is done. Idempotent (server-side apply, helm
        upgrade)."""
        from drillrunner.targets.kind import addons

        self.need("helm")  # before changing anything
        for manifest in addons.MANIFESTS:
            self._apply_file(apis, manifest.url)
            yield f"{manifest.name} applied"
        chart, repo, version = addons.ESO_CHART
        self._cmd("helm", "--kube-context", self.context, "upgrade", "--install", chart,
                  chart, "--repo", repo, "--version", version, "--namespace",
                  addons.ESO_NAMESPACE, "--create-namespace", "--wait", "--timeout", "10m")
        yield f"external-secrets {version} installed"
        addons.wait_namespaces(apis.apps, [m.namespace for m in addons.MANIFESTS]
                               + [addons.ESO_NAMESPACE], timeout)
        yield "add-ons available"
        self._apply_file(apis, str(addons.vault_manifest(self.root)))
        created = addons.ensure_vault_secret(apis.core)
        yield (f"{addons.VAULT_NAMESPACE}/{addons.VAULT_SECRET} "
               f"({'created' if created else 'kept'})")

    def delete(self) -> bool:
        self.check_tools()
        if not self.exists():
            return False
        self._cmd("kind", "delete", "cluster", "--name", self.name)
        return True


def server_side_apply(apis: Any, rendered: str) -> int:
    """Apply every document of a kustomize build through the dynamic client."""
    import yaml
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(apis.api_client)  # type: ignore[no-untyped-call]
    count = 0
    for doc in yaml.safe_load_all(rendered):
        if not doc:
            continue
        resource = dyn.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        md = doc["metadata"]
        dyn.server_side_apply(  # type: ignore[no-untyped-call]
            resource, body=doc, name=md["name"],
            namespace=md.get("namespace"), field_manager="drill", force_conflicts=True)
        count += 1
    return count


def workload_readiness(apis: Any, namespace: str = NAMESPACE) -> dict[str, tuple[int, int]]:
    """Every StatefulSet and Deployment: (ready replicas, wanted replicas)."""
    out: dict[str, tuple[int, int]] = {}
    for sts in apis.apps.list_namespaced_stateful_set(namespace).items:
        out[f"statefulset/{sts.metadata.name}"] = (sts.status.ready_replicas or 0,
                                                   sts.spec.replicas or 0)
    for dep in apis.apps.list_namespaced_deployment(namespace).items:
        out[f"deployment/{dep.metadata.name}"] = (dep.status.ready_replicas or 0,
                                                  dep.spec.replicas or 0)
    return out


def wait_ready(apis: Any, timeout: float, on_ready: Callable[[str, int], None],
               namespace: str = NAMESPACE) -> None:
    """Poll until every workload has all its replicas ready; report each as it gets there."""
    reported: set[str] = set()

    def all_ready() -> bool:
        state = workload_readiness(apis, namespace)
        for name, (ready, wanted) in sorted(state.items()):
            if ready >= wanted and name not in reported:
                reported.add(name)
                on_ready(name, ready)
        return bool(state) and all(r >= w for r, w in state.values())

    try:
        poll_until(all_ready, timeout=timeout, interval=2.0, what="every workload to be ready")
    except WaitTimeout as exc:
        pending = [f"{n} {r}/{w}" for n, (r, w) in sorted(workload_readiness(
            apis, namespace).items()) if r < w]
        raise StackError(f"{exc}; not ready: {', '.join(pending) or 'no workloads'}") from None

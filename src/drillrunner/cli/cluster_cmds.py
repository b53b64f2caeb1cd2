"""drill cluster up | down | status: the kind cluster with the stack's manifests."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Create, remove and inspect the kind cluster running the stack (needs docker, kind).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Name = Annotated[str, typer.Option("--name", help="The kind cluster's name (context kind-NAME).")]


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


def _cluster(name: str) -> Any:
    from drillrunner.core.paths import project_root
    from drillrunner.targets.kind.cluster import Cluster

    return Cluster(project_root(), name)


@app.command()
def up(
    name: Name = "drill",
    timeout: Annotated[float, typer.Option(
        help="Seconds to wait for every workload to be ready.")] = 900.0,
) -> None:
    """Create the kind cluster from kind-config.yaml (unless it exists), build and load the
    project's images, install ingress-nginx, cert-manager and External Secrets (pinned
    versions; needs helm), create the credential store with random passwords (once), apply
    deploy/k8s and wait until every workload is ready. Idempotent."""
    from drillrunner.targets.kind.apis import connect
    from drillrunner.targets.kind.cluster import wait_ready

    cluster = _cluster(name)
    cluster.need("docker", "kind", "helm")  # every tool, before anything is created
    started = time.monotonic()
    typer.echo(f"creating kind cluster {name}...", err=True)
    created = cluster.create()
    typer.echo(f"  cluster {'created' if created else 'already exists'} "
               f"({time.monotonic() - started:.1f}s)", err=True)
    typer.echo("  building and loading the images...", err=True)
    for tag in cluster.load_images():
        typer.echo(f"  image {tag} built and loaded ({time.monotonic() - started:.1f}s)",
                   err=True)
    _, apis = connect(context=cluster.context)
    typer.echo("  installing ingress-nginx, cert-manager, External Secrets...", err=True)
    for step in cluster.install_addons(apis):
        typer.echo(f"  {step} ({time.monotonic() - started:.1f}s)", err=True)
    how = cluster.apply(apis)
    typer.echo(f"  deploy/k8s applied ({how})", err=True)
    wait_ready(apis, timeout, lambda workload, ready: typer.echo(
        f"  {workload} ready ({ready} replica(s), {time.monotonic() - started:.1f}s)", err=True))
    from drillrunner.services.registry import REGISTRY
    from drillrunner.targets.kind.target import KindTarget

    target = KindTarget.connect(context=cluster.context, adapters=REGISTRY.adapters("kind"))
    try:  # what the drills expect beyond the manifests (the Kafka topic, the NATS stream)
        for ops in target.deployments():
            for line in (ops.prepare() if hasattr(ops, "prepare") else []):
                typer.echo(f"  {line}", err=True)
    finally:
        target.close()
    typer.echo(f"cluster ready in {time.monotonic() - started:.1f}s; context {cluster.context}",
               err=True)


@app.command()
def down(name: Name = "drill") -> None:
    """Delete the kind cluster (its volumes go with it)."""
    cluster = _cluster(name)
    from drillrunner.targets.kind.safety import check_context

    check_context(cluster.context)
    deleted = cluster.delete()
    typer.echo(f"cluster {name} {'deleted' if deleted else 'did not exist'}", err=True)


def status_rows(target: Any) -> dict[str, list[dict[str, Any]]]:
    """Nodes (ready, roles) and each member pod with its node and live role."""
    from drillrunner.services.registry import live_roles

    nodes = []
    for node in target.apis.core.list_node().items:
        labels = node.metadata.labels or {}
        node_roles = [k.split("/", 1)[1] for k in labels
                      if k.startswith("node-role.kubernetes.io/")]
        ready = any(c.type == "Ready" and c.status == "True"
                    for c in (node.status.conditions or []))
        nodes.append({"name": node.metadata.name, "ready": ready,
                      "roles": ",".join(node_roles) or "worker"})
    pods = []
    for service in target.services():
        roles = live_roles(target, service)
        for m in target.members(service):
            info = target.pod(m.name)
            pods.append({"service": service, "name": m.name, "kind": m.kind,
                         "ready": target.is_running(m),
                         "node": info.node if info is not None else None,
                         "role": roles.get(m.name, "unknown"), "host": m.host, "port": m.port})
    return {"nodes": nodes, "pods": pods}


@app.command()
def status(
    context: Annotated[str | None, typer.Option(
        help="Kube context (default: kind-drill; must be on the allow-list).")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.TABLE,
) -> None:
    """The cluster's nodes, and each member pod with its node and live role."""
    from drillrunner.services.registry import REGISTRY
    from drillrunner.targets.kind.target import KindTarget

    target = KindTarget.connect(context=context or "kind-drill",
                                adapters=REGISTRY.adapters("kind"))
    try:
        rows = status_rows(target)
        desc = target.fingerprint()
    finally:
        target.close()
    if fmt is Format.JSON:
        typer.echo(json.dumps({"context": target.context, **desc, **rows}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"context {target.context}, {desc['server_version']}, "
                  f"fingerprint {desc['cluster_fingerprint']}", highlight=False)
    nodes = Table("node", "roles", "ready")
    for n in rows["nodes"]:
        nodes.add_row(n["name"], n["roles"], "yes" if n["ready"] else "NO")
    console.print(nodes)
    pods = Table("service", "pod", "kind", "role", "node", "ready")
    for p in rows["pods"]:
        pods.add_row(p["service"], p["name"], p["kind"], p["role"], p["node"] or "-",
                     "yes" if p["ready"] else "NO")
    console.print(pods)

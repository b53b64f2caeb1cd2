"""The audit rules, one per claim of the production readiness review they test.

Each rule gets every resource of the input (some look across resources: a workload's
envFrom ConfigMap) and yields Problems; a rule that yields none passes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from typing import Any

from drillrunner.audit.k8s import (
    LONG_RUNNING,
    containers,
    items,
    mapping,
    word,
    workloads,
)
from drillrunner.audit.model import Problem, Resource, line_of
from drillrunner.audit.registry import rule


@rule("probes-declared", claims=["C01-ha-probes", "C05-probe-coverage"])
def probes_declared(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Readiness and liveness probes on every container of a long-running workload."""
    for res, spec in workloads(resources):
        if res.kind not in LONG_RUNNING:
            continue
        for c, _ in containers(spec, init=False):
            missing = [p for p in ("readinessProbe", "livenessProbe") if not c.get(p)]
            if missing:
                yield Problem(res, f"no {' and no '.join(missing)}", c.get("name"),
                              line_of(c))


@rule("resource-requests", claims=["C05-probe-coverage"])
def resource_requests(resources: Sequence[Resource]) -> Iterator[Problem]:
    """CPU and memory requests on every container, Jobs, CronJobs and initContainers too."""
    for res, spec in workloads(resources):
        for c, init in containers(spec):
            requests = mapping(mapping(c.get("resources")).get("requests"))
            missing = [r for r in ("cpu", "memory") if r not in requests]
            if missing:
                what = "initContainer" if init else "container"
                yield Problem(res, f"{what} requests no {' and no '.join(missing)}",
                              c.get("name"), line_of(c.get("resources"), "requests")
                              or line_of(c, "resources") or line_of(c))


@rule("data-on-pvc", claims=["C04-persistent-storage", "C13-restart-persistence"])
def data_on_pvc(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Each server's data directory (as its config sets it) is on a PVC, never on emptyDir,
    hostPath or the container's filesystem (audit/rules_data.py)."""
    from drillrunner.audit.rules_data import data_problems

    yield from data_problems(resources)


def _setting_line(key: str, own: dict[str, Any], pod: dict[str, Any], container: dict[str, Any]
                  ) -> int | None:
    """The line that sets a security setting (the container's wins over the pod's), else
    that of the securityContext that should, else the container's."""
    for holder in (own, pod):
        if key in holder:
            return line_of(holder, key)
    return line_of(own) or line_of(pod) or line_of(container)


@rule("non-root", claims=["C07-non-root"])
def non_root(resources: Sequence[Resource]) -> Iterator[Problem]:
    """runAsNonRoot or a non-zero runAsUser for every container (pod or container level)."""
    for res, spec in workloads(resources):
        pod = mapping(spec.get("securityContext"))
        for c, _ in containers(spec):
            own = mapping(c.get("securityContext"))
            ctx = {**pod, **own}
            user = ctx.get("runAsUser")
            if user == 0:
                yield Problem(res, "runs as root (runAsUser: 0)", c.get("name"),
                              _setting_line("runAsUser", own, pod, c))
            elif ctx.get("runAsNonRoot") is not True and not (isinstance(user, int) and user):
                yield Problem(res, "neither runAsNonRoot: true nor a non-zero runAsUser",
                              c.get("name"), _setting_line("runAsNonRoot", own, pod, c))
            if own.get("privileged") is True:
                yield Problem(res, "privileged container", c.get("name"),
                              line_of(own, "privileged"))


_FORCED_HTTPS = {
    "nginx.ingress.kubernetes.io/ssl-redirect": "true",
    "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
    "ingress.kubernetes.io/ssl-redirect": "true",
    "traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
}
_ISSUERS = ("cert-manager.io/cluster-issuer", "cert-manager.io/issuer")


def _covered(host: str, tls_hosts: set[str]) -> bool:
    return host in tls_hosts or any(
        t.startswith("*.") and host.endswith(t[1:]) and host.count(".") == t.count(".")
        for t in tls_hosts)


@rule("ingress-tls", claims=["C02-tls-ingress"])
def ingress_tls(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Every Ingress terminates TLS for all its hosts, forces HTTPS and names its issuer."""
    for res in resources:
        if res.kind != "Ingress":
            continue
        spec = mapping(res.body.get("spec"))
        meta = mapping(res.body.get("metadata"))
        annotations = meta.get("annotations")
        notes = {str(k): word(v) for k, v in mapping(annotations).items()}
        tls = [mapping(t) for t in items(spec.get("tls"))]
        if not tls:
            yield Problem(res, "no TLS (spec.tls is empty): served over plain HTTP",
                          line=line_of(spec, "tls") or line_of(res.body, "spec"))
        else:
            tls_hosts = {str(h) for t in tls for h in items(t.get("hosts"))}
            for r in items(spec.get("rules")):
                host = mapping(r).get("host")
                if host and not _covered(str(host), tls_hosts):
                    yield Problem(res, f"host {host} is not covered by spec.tls",
                                  line=line_of(r, "host"))
            for t in tls:
                if not t.get("secretName"):
                    yield Problem(res, "a spec.tls entry names no secretName", line=line_of(t))
                    break
        notes_line = line_of(meta, "annotations") or line_of(res.body, "metadata")
        if not any(notes.get(k) == v for k, v in _FORCED_HTTPS.items()):
            forced = next((k for k in _FORCED_HTTPS if k in notes), None)
            yield Problem(res, "HTTPS is not forced (no ssl-redirect / force-ssl-redirect "
                               "annotation set to true)",
                          line=line_of(annotations, forced) if forced else notes_line)
        if not any(notes.get(k) for k in _ISSUERS):
            yield Problem(res, "no cert-manager issuer annotation: the certificate is not "
                               "pinned to an issuer", line=notes_line)


@rule("egress-restricted", claims=["C10-egress-policy"])
def egress_restricted(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Egress NetworkPolicies allow named destinations only: no 0.0.0.0/0, no open rule."""
    for res in resources:
        if res.kind != "NetworkPolicy":
            continue
        for i, egress in enumerate(items(mapping(res.body.get("spec")).get("egress"))):
            peers = items(mapping(egress).get("to"))
            if not peers:
                yield Problem(res, f"egress rule {i} has no 'to': it allows every destination",
                              line=line_of(egress))
            for peer in peers:
                block = mapping(mapping(peer).get("ipBlock"))
                cidr, line = block.get("cidr"), line_of(block, "cidr")
                if cidr is None:
                    continue
                try:
                    net = ipaddress.ip_network(str(cidr), strict=False)
                except ValueError:
                    yield Problem(res, f"egress rule {i}: invalid CIDR {cidr!r}", line=line)
                    continue
                if net.prefixlen == 0:
                    yield Problem(res, f"egress rule {i} allows {cidr} (the whole internet)",
                                  line=line)

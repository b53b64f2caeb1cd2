"""The audit rules, one per claim of the production readiness review they test.

Each rule gets every resource of the input (some look across resources: a workload's
envFrom ConfigMap) and yields Problems; a rule that yields none passes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Sequence
from typing import Any

from drillrunner.audit.k8s import (
    LONG_RUNNING,
    config_data,
    containers,
    data_line,
    items,
    mapping,
    pod_labels,
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


_STATEFUL = re.compile(r"redis|feast|timescale|postgres", re.I)
_DATA = re.compile(r"data|pgdata|registry|/var/lib/|aof|dump|store", re.I)


def _stateful_service(res: Resource, spec: dict[str, Any]) -> str | None:
    labels = pod_labels(res)
    for value in (labels.get("app.kubernetes.io/name"), labels.get("app"), res.name,
                  *(c.get("image") for c, _ in containers(spec))):
        if isinstance(value, str) and (m := _STATEFUL.search(value)):
            return m.group(0).lower()
    return None


@rule("data-on-pvc", claims=["C04-persistent-storage", "C13-restart-persistence"])
def data_on_pvc(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Redis, Feast and TimescaleDB keep their data on PVCs, never on emptyDir or hostPath."""
    for res, spec in workloads(resources):
        service = _stateful_service(res, spec)
        if service is None:
            continue
        mounts: dict[str, list[tuple[str, str]]] = {}
        for c, _ in containers(spec):
            for m in items(c.get("volumeMounts")):
                mounts.setdefault(str(mapping(m).get("name")), []).append(
                    (str(c.get("name")), str(mapping(m).get("mountPath", ""))))
        for vol in items(spec.get("volumes")):
            vol = mapping(vol)
            kind = "emptyDir" if "emptyDir" in vol else "hostPath" if "hostPath" in vol else None
            name = str(vol.get("name"))
            if kind is None:
                continue
            for container, path in mounts.get(name, [(None, "")]):
                if _DATA.search(name) or _DATA.search(path):
                    yield Problem(res, f"{service} data volume {name!r} "
                                       f"({path or 'not mounted'}) is an {kind}: lost with "
                                       "the pod; use a PersistentVolumeClaim "
                                       "(volumeClaimTemplates)", container,
                                  line_of(vol, kind))


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


_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|(^|_)PASS$|(^|_)PWD$|SECRET|TOKEN|(^|_)DSN$|API_?KEY"
                          r"|CREDENTIAL|PRIVATE_?KEY|CONNECTION_?STRING|DATABASE_URL", re.I)
# Names that point to a credential rather than hold one.
_REFERENCE_NAME = re.compile(r"_(NAME|FILE|PATH|DIR|REF|KEY_?ID|ENABLED|TTL|TIMEOUT)$", re.I)
# Linear on any input: no braces inside a placeholder, and a scheme starts where a run of
# scheme characters does (else each start in a long line rescans the rest of it).
_PLACEHOLDER = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\{[^{}]+\}|\{\{[^{}]*\}\}")
_URL_CRED = re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^:/@\s]+:([^@\s/]+)@", re.I)
_KV_CRED = re.compile(r"\b(password|passwd|pwd|secret|token|api_?key)\b\s*[:=]\s*"
                      r"['\"]?([^\s'\",;}]*)", re.I)


def _literal(value: str) -> bool:
    return bool(value.strip()) and not _PLACEHOLDER.search(value)


def _secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) and not _REFERENCE_NAME.search(name)


def _inline_credentials(text: str) -> dict[str, int]:
    """Descriptions (never the value) of credentials written into a text, each with the
    (1-based) line of the text it is first seen on."""
    found: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for m in _URL_CRED.finditer(line):
            if _literal(m.group(1)):
                found.setdefault("a URL with user:password@", n)
        for m in _KV_CRED.finditer(line):
            rest = line[m.start(2):].lstrip("'\"")
            if m.group(2) and not _PLACEHOLDER.match(rest):
                found.setdefault(f"a literal {m.group(1).lower()}", n)
    return found


@rule("no-plaintext-credentials",
      claims=["C14-external-secrets", "C04-persistent-storage", "C03-simulation-secrets"])
def no_plaintext_credentials(resources: Sequence[Resource]) -> Iterator[Problem]:
    """No credential written in env values, ConfigMaps or Secret manifests (use secretKeyRef
    to an ExternalSecret-managed Secret)."""
    for res, spec in workloads(resources):
        for c, _ in containers(spec):
            for env in items(c.get("env")):
                name, value = str(mapping(env).get("name", "")), mapping(env).get("value")
                if value is None:  # valueFrom: secretKeyRef and friends are the right way
                    continue
                line = line_of(env, "value")
                if _secret_name(name) and _literal(str(value)):
                    yield Problem(res, f"env {name} holds a literal credential; use "
                                       "valueFrom.secretKeyRef", c.get("name"), line)
                else:
                    for what in sorted(_inline_credentials(str(value))):
                        yield Problem(res, f"env {name} contains {what}", c.get("name"), line)
    for res in resources:
        if res.kind == "ConfigMap":
            for key, text in config_data(res).items():
                if _secret_name(key) and _literal(text) and "\n" not in text.strip():
                    yield Problem(res, f"key {key} holds a literal credential",
                                  line=data_line(res, key))
                    continue
                for what, inner in sorted(_inline_credentials(text).items()):
                    yield Problem(res, f"key {key} contains {what}",
                                  line=data_line(res, key, inner))
        elif res.kind == "Secret" and (res.body.get("data") or res.body.get("stringData")):
            field = "stringData" if res.body.get("stringData") else "data"
            yield Problem(res, "a Secret with its values in the manifests (committed to git); "
                               "use an ExternalSecret", line=line_of(res.body, field))

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
    FALSE,
    LONG_RUNNING,
    TRUE,
    config_data,
    containers,
    items,
    leaves,
    mapping,
    parsed,
    pod_labels,
    word,
    workloads,
)
from drillrunner.audit.model import Problem, Resource
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
                yield Problem(res, f"no {' and no '.join(missing)}", c.get("name"))


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
                              c.get("name"))


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
                                       "(volumeClaimTemplates)", container)


@rule("non-root", claims=["C07-non-root"])
def non_root(resources: Sequence[Resource]) -> Iterator[Problem]:
    """runAsNonRoot or a non-zero runAsUser for every container (pod or container level)."""
    for res, spec in workloads(resources):
        pod = mapping(spec.get("securityContext"))
        for c, _ in containers(spec):
            ctx = {**pod, **mapping(c.get("securityContext"))}
            user = ctx.get("runAsUser")
            if user == 0:
                yield Problem(res, "runs as root (runAsUser: 0)", c.get("name"))
            elif ctx.get("runAsNonRoot") is not True and not (isinstance(user, int) and user):
                yield Problem(res, "neither runAsNonRoot: true nor a non-zero runAsUser",
                              c.get("name"))
            if mapping(c.get("securityContext")).get("privileged") is True:
                yield Problem(res, "privileged container", c.get("name"))


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
        notes = {str(k): word(v) for k, v in
                 mapping(mapping(res.body.get("metadata")).get("annotations")).items()}
        tls = [mapping(t) for t in items(spec.get("tls"))]
        if not tls:
            yield Problem(res, "no TLS (spec.tls is empty): served over plain HTTP")
        else:
            tls_hosts = {str(h) for t in tls for h in items(t.get("hosts"))}
            for r in items(spec.get("rules")):
                host = mapping(r).get("host")
                if host and not _covered(str(host), tls_hosts):
                    yield Problem(res, f"host {host} is not covered by spec.tls")
            if any(not t.get("secretName") for t in tls):
                yield Problem(res, "a spec.tls entry names no secretName")
        if not any(notes.get(k) == v for k, v in _FORCED_HTTPS.items()):
            yield Problem(res, "HTTPS is not forced (no ssl-redirect / force-ssl-redirect "
                               "annotation set to true)")
        if not any(notes.get(k) for k in _ISSUERS):
            yield Problem(res, "no cert-manager issuer annotation: the certificate is not "
                               "pinned to an issuer")


@rule("egress-restricted", claims=["C10-egress-policy"])
def egress_restricted(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Egress NetworkPolicies allow named destinations only: no 0.0.0.0/0, no open rule."""
    for res in resources:
        if res.kind != "NetworkPolicy":
            continue
        for i, egress in enumerate(items(mapping(res.body.get("spec")).get("egress"))):
            peers = items(mapping(egress).get("to"))
            if not peers:
                yield Problem(res, f"egress rule {i} has no 'to': it allows every destination")
            for peer in peers:
                cidr = mapping(mapping(peer).get("ipBlock")).get("cidr")
                if cidr is None:
                    continue
                try:
                    net = ipaddress.ip_network(str(cidr), strict=False)
                except ValueError:
                    yield Problem(res, f"egress rule {i}: invalid CIDR {cidr!r}")
                    continue
                if net.prefixlen == 0:
                    yield Problem(res, f"egress rule {i} allows {cidr} (the whole internet)")


_KILL = re.compile(r"kill.?switch", re.I)
_BREAKER = re.compile(r"breaker", re.I)
_SWITCH_STATE_KEYS = {"default", "state", "default_state", "kill_switch_default",
                      "killswitch_default"}


def _toggle_problems(where: str, key: str, value: Any, kill: bool) -> Iterator[str]:
    k, v = key.lower().replace("-", "_"), word(value)
    if kill and k in _SWITCH_STATE_KEYS and v not in TRUE:
        yield f"{where}: kill-switch default is {value!r}, not engaged"
    elif k.endswith("fail_closed") and v in FALSE:
        yield f"{where}: fail_closed is false: an unreadable switch lets orders through"
    elif k.endswith("enabled") and v in FALSE:
        what = "kill-switch" if kill else "circuit breaker"
        yield f"{where}: {what} disabled ({key}: {value})"


@rule("kill-switch-breakers", claims=["C11-kill-switch-breakers"])
def kill_switch_breakers(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Kill-switch ConfigMaps default to engaged (fail closed); circuit breakers enabled."""
    for res in resources:
        if res.kind == "ConfigMap" and (_KILL.search(res.name) or _BREAKER.search(res.name)):
            kill = bool(_KILL.search(res.name))
            for key, text in config_data(res).items():
                doc = parsed(text)
                pairs = list(leaves(doc)) if isinstance(doc, dict | list) else [(key, key, text)]
                for path, k, v in pairs:
                    for msg in _toggle_problems(f"{key}:{path}" if path != key else key, k, v,
                                                kill):
                        yield Problem(res, msg)
    for res, spec in workloads(resources):
        for c, _ in containers(spec):
            for env in items(c.get("env")):
                name, value = str(mapping(env).get("name", "")), mapping(env).get("value")
                if value is None:
                    continue
                if _KILL.search(name):
                    key = "default" if name.upper().endswith(("DEFAULT", "STATE")) else name
                    for msg in _toggle_problems(f"env {name}", key, value, True):
                        yield Problem(res, msg, c.get("name"))
                elif _BREAKER.search(name):
                    for msg in _toggle_problems(f"env {name}", name, value, False):
                        yield Problem(res, msg, c.get("name"))


_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|(^|_)PASS$|(^|_)PWD$|SECRET|TOKEN|(^|_)DSN$|API_?KEY"
                          r"|CREDENTIAL|PRIVATE_?KEY|CONNECTION_?STRING|DATABASE_URL", re.I)
# Names that point to a credential rather than hold one.
_REFERENCE_NAME = re.compile(r"_(NAME|FILE|PATH|DIR|REF|KEY_?ID|ENABLED|TTL|TIMEOUT)$", re.I)
_PLACEHOLDER = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\{[^}]+\}|\{\{.*?\}\}")
_URL_CRED = re.compile(r"[a-z][a-z0-9+.-]*://[^:/@\s]+:([^@\s/]+)@", re.I)
_KV_CRED = re.compile(r"\b(password|passwd|pwd|secret|token|api_?key)\b\s*[:=]\s*"
                      r"['\"]?([^\s'\",;}]*)", re.I)


def _literal(value: str) -> bool:
    return bool(value.strip()) and not _PLACEHOLDER.search(value)


def _secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) and not _REFERENCE_NAME.search(name)


def _inline_credentials(text: str) -> Iterator[str]:
    """Descriptions (never the value) of credentials written into a text."""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for m in _URL_CRED.finditer(line):
            if _literal(m.group(1)):
                yield "a URL with user:password@"
        for m in _KV_CRED.finditer(line):
            rest = line[m.start(2):].lstrip("'\"")
            if m.group(2) and not _PLACEHOLDER.match(rest):
                yield f"a literal {m.group(1).lower()}"


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
                if _secret_name(name) and _literal(str(value)):
                    yield Problem(res, f"env {name} holds a literal credential; use "
                                       "valueFrom.secretKeyRef", c.get("name"))
                else:
                    for what in sorted(set(_inline_credentials(str(value)))):
                        yield Problem(res, f"env {name} contains {what}", c.get("name"))
    for res in resources:
        if res.kind == "ConfigMap":
            for key, text in config_data(res).items():
                if _secret_name(key) and _literal(text) and "\n" not in text.strip():
                    yield Problem(res, f"key {key} holds a literal credential")
                    continue
                for what in sorted(set(_inline_credentials(text))):
                    yield Problem(res, f"key {key} contains {what}")
        elif res.kind == "Secret" and (res.body.get("data") or res.body.get("stringData")):
            yield Problem(res, "a Secret with its values in the manifests (committed to git); "
                               "use an ExternalSecret")


_ENV_KEY = re.compile(r"(^|_)(ENV|ENVIRONMENT)$", re.I)
_SIM_KEY = re.compile(r"SIMULATION(_MODE|_ENABLED)?$|(^|_)SIMULATE$", re.I)
_GUARD_KEY = re.compile(r"SIMULATION_?GUARD", re.I)
_PRODUCTION = {"production", "prod"}


def _settings(values: dict[str, Any]) -> dict[str, Any]:
    """Flattened settings (env, ConfigMap keys and YAML values in them), keys normalized."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        doc = parsed(value) if isinstance(value, str) else None
        if isinstance(doc, dict):
            flat.update({k.upper().replace("-", "_"): v for _, k, v in leaves(doc)})
        flat[key.upper().replace("-", "_")] = value
    return flat


def _simulation_problems(settings: dict[str, Any], production: bool) -> Iterator[str]:
    production = production or any(_ENV_KEY.search(k) and word(v) in _PRODUCTION
                                   for k, v in settings.items())
    if not production:
        return
    for k, v in settings.items():
        if _SIM_KEY.search(k) and word(v) in TRUE:
            yield f"simulation mode on ({k}={v}) in a production environment"
        elif _GUARD_KEY.search(k) and word(v) in FALSE:
            yield f"simulation guard off ({k}={v}) in a production environment"


@rule("simulation-off-in-production", claims=["C06-simulation-guard"])
def simulation_off_in_production(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Simulation mode off (and its guard on) wherever the environment is production."""
    configmaps = {(r.namespace, r.name): config_data(r) for r in resources
                  if r.kind == "ConfigMap"}
    prod_ns = {r.name for r in resources if r.kind == "Namespace" and any(
        word(mapping(mapping(r.body.get("metadata")).get("labels")).get(k)) in _PRODUCTION
        for k in ("environment", "env"))}
    for (ns, name), data in configmaps.items():
        res = next(r for r in resources if r.kind == "ConfigMap" and (r.namespace, r.name)
                   == (ns, name))
        for msg in _simulation_problems(_settings(data), ns in prod_ns):
            yield Problem(res, msg)
    for res, spec in workloads(resources):
        for c, _ in containers(spec):
            values: dict[str, Any] = {}
            for src in items(c.get("envFrom")):
                ref = mapping(mapping(src).get("configMapRef")).get("name")
                values.update(configmaps.get((res.namespace, str(ref)), {}))
            values.update({str(mapping(e).get("name")): mapping(e).get("value")
                           for e in items(c.get("env")) if mapping(e).get("value") is not None})
            for msg in _simulation_problems(_settings(values), res.namespace in prod_ns):
                yield Problem(res, msg, c.get("name"))

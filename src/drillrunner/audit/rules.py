"""The audit rules, one per claim of the production readiness review they test.

Each rule gets every resource of the input (some look across resources: a workload's
envFrom ConfigMap) and yields Problems; a rule that yields none passes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from drillrunner.audit.k8s import (
    FALSE,
    LONG_RUNNING,
    TRUE,
    config_data,
    containers,
    data_line,
    items,
    leaves,
    mapping,
    parsed,
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
                pairs = (list(leaves(doc)) if isinstance(doc, dict | list)
                         else [(key, key, text, None)])
                for path, k, v, inner in pairs:
                    for msg in _toggle_problems(f"{key}:{path}" if path != key else key, k, v,
                                                kill):
                        yield Problem(res, msg, line=data_line(res, key, inner))
    for res, spec in workloads(resources):
        for c, _ in containers(spec):
            for env in items(c.get("env")):
                name, value = str(mapping(env).get("name", "")), mapping(env).get("value")
                if value is None:
                    continue
                line = line_of(env, "value")
                if _KILL.search(name):
                    key = "default" if name.upper().endswith(("DEFAULT", "STATE")) else name
                    for msg in _toggle_problems(f"env {name}", key, value, True):
                        yield Problem(res, msg, c.get("name"), line)
                elif _BREAKER.search(name):
                    for msg in _toggle_problems(f"env {name}", name, value, False):
                        yield Problem(res, msg, c.get("name"), line)


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


_ENV_KEY = re.compile(r"(^|_)(ENV|ENVIRONMENT)$", re.I)
_SIM_KEY = re.compile(r"SIMULATION(_MODE|_ENABLED)?$|(^|_)SIMULATE$", re.I)
_GUARD_KEY = re.compile(r"SIMULATION_?GUARD", re.I)
_PRODUCTION = {"production", "prod"}


Locate = Callable[[str, int | None], int | None]  # (key, line in its value) -> line


def _entry_line(lines: dict[str, int | None], key: str, _inner: int | None) -> int | None:
    return lines.get(key)


def _settings(values: dict[str, Any], locate: Locate
              ) -> tuple[dict[str, Any], dict[str, int | None]]:
    """Flattened settings (env, ConfigMap keys and YAML values in them), keys normalized,
    and the line of each."""
    flat: dict[str, Any] = {}
    lines: dict[str, int | None] = {}
    for key, value in values.items():
        doc = parsed(value) if isinstance(value, str) else None
        if isinstance(doc, dict):
            for _, k, v, inner in leaves(doc):
                norm = k.upper().replace("-", "_")
                flat[norm], lines[norm] = v, locate(key, inner)
        norm = key.upper().replace("-", "_")
        flat[norm], lines[norm] = value, locate(key, None)
    return flat, lines


def _simulation_problems(settings: dict[str, Any], production: bool
                         ) -> Iterator[tuple[str, str]]:
    """(setting, message) for each setting that is wrong in production."""
    production = production or any(_ENV_KEY.search(k) and word(v) in _PRODUCTION
                                   for k, v in settings.items())
    if not production:
        return
    for k, v in settings.items():
        if _SIM_KEY.search(k) and word(v) in TRUE:
            yield k, f"simulation mode on ({k}={v}) in a production environment"
        elif _GUARD_KEY.search(k) and word(v) in FALSE:
            yield k, f"simulation guard off ({k}={v}) in a production environment"


@rule("simulation-off-in-production", claims=["C06-simulation-guard"])
def simulation_off_in_production(resources: Sequence[Resource]) -> Iterator[Problem]:
    """Simulation mode off (and its guard on) wherever the environment is production."""
    owners = {(r.namespace, r.name): r for r in resources if r.kind == "ConfigMap"}
    configmaps = {key: config_data(r) for key, r in owners.items()}
    prod_ns = {r.name for r in resources if r.kind == "Namespace" and any(
        word(mapping(mapping(r.body.get("metadata")).get("labels")).get(k)) in _PRODUCTION
        for k in ("environment", "env"))}
    for (ns, name), res in owners.items():
        settings, lines = _settings(configmaps[ns, name], partial(data_line, res))
        for k, msg in _simulation_problems(settings, ns in prod_ns):
            yield Problem(res, msg, line=lines[k])
    for res, spec in workloads(resources):
        for c, _ in containers(spec):
            values: dict[str, Any] = {}
            where: dict[str, int | None] = {}  # the env entry, or the envFrom that loads it
            for src in items(c.get("envFrom")):
                ref = mapping(mapping(src).get("configMapRef")).get("name")
                loaded = configmaps.get((res.namespace, str(ref)), {})
                values.update(loaded)
                where.update(dict.fromkeys(loaded, line_of(src)))
            for e in items(c.get("env")):
                if mapping(e).get("value") is not None:
                    name = str(mapping(e).get("name"))
                    values[name], where[name] = mapping(e).get("value"), line_of(e, "value")
            settings, lines = _settings(values, partial(_entry_line, where))
            for k, msg in _simulation_problems(settings, res.namespace in prod_ns):
                yield Problem(res, msg, c.get("name"), lines[k])

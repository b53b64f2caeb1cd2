"""A container's effective configuration, as the server in it will see it.

For each container of a workload: its argv (command + args, scripts split into words), its
environment (env, envFrom, values from ConfigMaps and Secrets), the files mounted into it from
ConfigMaps and Secrets, and which volume backs any path (`volume_for`). Every value keeps the
resource and the 1-based line it was written on, so a rule about a server's setting points at
the very line that sets it, even when that line is in a ConfigMap of another file.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from drillrunner.audit.k8s import containers, data_line, items, mapping, workloads
from drillrunner.audit.model import LineDict, Resource, line_of


@dataclass(frozen=True)
class Value:
    """A setting's value and where it is written (the resource and the 1-based line)."""

    text: str
    res: Resource
    line: int | None


class VolumeKind(StrEnum):
    PVC = "persistentVolumeClaim"
    CLAIM_TEMPLATE = "volumeClaimTemplate"
    EMPTY_DIR = "emptyDir"
    HOST_PATH = "hostPath"
    EPHEMERAL = "ephemeral"  # a generic ephemeral volume: a claim deleted with the pod
    CONFIG = "config"  # configMap, secret, projected, downwardAPI: read-only data
    OTHER = "other"  # nfs, csi, iscsi...: storage outside the pod, not judged here
    NONE = "container filesystem"  # no volume: the container's writable layer


# What outlives the pod, and what is lost with it (or, the container filesystem, with the
# container). A generic ephemeral volume is neither: a claim whose lifetime is the pod's by
# explicit choice (a temporary restore copy), not judged.
DURABLE = frozenset({VolumeKind.PVC, VolumeKind.CLAIM_TEMPLATE, VolumeKind.OTHER})
LOST = frozenset({VolumeKind.EMPTY_DIR, VolumeKind.HOST_PATH, VolumeKind.NONE})


@dataclass(frozen=True)
class Backing:
    """The volume behind a path: its kind, name, mount path and the line to point at (the
    volume's kind field, the claim template, or the container for the container filesystem)."""

    kind: VolumeKind
    name: str
    mount_path: str
    line: int | None

    @property
    def durable(self) -> bool:
        return self.kind in DURABLE

    def describe(self) -> str:
        if self.kind is VolumeKind.NONE:
            return "the container's filesystem"
        return f"{self.kind.value} volume {self.name!r} (mounted at {self.mount_path})"


@dataclass(frozen=True)
class ConfigFile:
    """A file mounted from a ConfigMap or Secret key; `line(n)` is the manifest line of its
    n-th line (1-based) when it is written as a `key: |` block, else the key's line."""

    path: str
    text: str
    res: Resource
    key: str

    def line(self, inner: int | None = None) -> int | None:
        return source_line(self.res, self.key, inner)


@dataclass
class Container:
    """One container of a workload with its effective configuration."""

    res: Resource
    spec: dict[str, Any]
    body: dict[str, Any]
    init: bool
    argv: list[Value] = field(default_factory=list)
    env: dict[str, Value] = field(default_factory=dict)
    files: dict[str, ConfigFile] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.body.get("name", ""))

    @property
    def image(self) -> str:
        return str(self.body.get("image", ""))

    @property
    def line(self) -> int | None:
        return line_of(self.body) or self.res.line

    def words(self) -> list[str]:
        return [v.text for v in self.argv]

    def after(self, *programs: str) -> list[Value]:
        """The argv words after the last word naming one of `programs` (by basename, so
        `sh -c` flags do not count as the server's); the whole argv when none does."""
        start = 0
        for i, v in enumerate(self.argv):
            if posixpath.basename(v.text) in programs:
                start = i + 1
        return self.argv[start:]

    def flags(self, *names: str, after: Sequence[str] = ()) -> list[Value]:
        """Values of every `--flag value` or `--flag=value` among `names`, in argv order
        (only after the program when `after` names it)."""
        argv = self.after(*after) if after else self.argv
        found = []
        for i, v in enumerate(argv):
            for name in names:
                if v.text == name and i + 1 < len(argv):
                    found.append(argv[i + 1])
                elif v.text.startswith(name + "="):
                    found.append(Value(v.text[len(name) + 1:], v.res, v.line))
        return found

    def flag(self, *names: str, after: Sequence[str] = ()) -> Value | None:
        """The value of the last `--flag value` or `--flag=value` among `names`."""
        found = self.flags(*names, after=after)
        return found[-1] if found else None

    def volume_for(self, path: str) -> Backing:
        return volume_for(self.res, self.spec, self.body, path)

    def file(self, path: str) -> ConfigFile | None:
        """The mounted file at `path`; else, when a start script copies a seed file there
        (a config the server rewrites lives on its volume), the mounted file of that name."""
        path = posixpath.normpath(path)
        if path in self.files:
            return self.files[path]
        base = posixpath.basename(path)
        for f in self.files.values():
            if posixpath.basename(f.path) == base:
                return f
        return None


def source_line(res: Resource, key: str, inner: int | None = None) -> int | None:
    """Line of a ConfigMap/Secret key (data or stringData), or of line `inner` of its
    `key: |` block."""
    for section in ("data", "stringData", "binaryData"):
        data = res.body.get(section)
        if isinstance(data, dict) and key in data:
            if section == "data":
                return data_line(res, key, inner)
            if inner is not None and isinstance(data, LineDict) and data.blocks \
                    and key in data.blocks:
                return data.blocks[key] + inner
            return line_of(data, key)
    return line_of(res.body)


def _secret_values(res: Resource) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, raw in mapping(res.body.get("data")).items():
        try:
            values[str(key)] = base64.b64decode(str(raw), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
    values.update({str(k): str(v) for k, v in mapping(res.body.get("stringData")).items()
                   if v is not None})
    return values


class Sources:
    """ConfigMaps and Secrets of the input by (namespace, name)."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        self.objects: dict[tuple[str, str, str], tuple[Resource, dict[str, str]]] = {}
        for r in resources:
            if r.kind == "ConfigMap":
                data = {str(k): str(v) for k, v in mapping(r.body.get("data")).items()
                        if v is not None}
                self.objects["ConfigMap", r.namespace, r.name] = (r, data)
            elif r.kind == "Secret":
                self.objects["Secret", r.namespace, r.name] = (r, _secret_values(r))

    def get(self, kind: str, ns: str, name: Any) -> tuple[Resource, dict[str, str]] | None:
        return self.objects.get((kind, ns, str(name)))


def _words(text: str) -> list[tuple[str, int]]:
    """Words of a (possibly multi-line) argv item with their 0-based line in it; shell
    comments dropped, unbalanced quotes split on blanks."""
    out: list[tuple[str, int]] = []
    for n, line in enumerate(text.splitlines() or [""]):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        out += [(w, n) for w in words]
    return out


_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh"})
_SCRIPT_FLAG = re.compile(r"^-[a-z]*c[a-z]*$")


def _argv(res: Resource, c: dict[str, Any]) -> list[Value]:
    """command + args; a shell's script (`sh -c "..."`, or any multi-line item) is split
    into its words, each with its own line (a `key: |` block starts on the next line)."""
    argv: list[Value] = []
    raw: list[str] = []
    for key in ("command", "args"):
        seq = c.get(key)
        for i, item in enumerate(items(seq)):
            text, line = str(item), line_of(seq, i)
            block = "\n" in text.rstrip("\n") or text.endswith("\n")
            script = block or (bool(raw) and bool(_SCRIPT_FLAG.match(raw[-1]))
                               and any(posixpath.basename(w) in _SHELLS for w in raw))
            raw.append(text)
            for word, n in _words(text) if script else [(text, 0)]:
                argv.append(Value(word, res, line + n + (1 if block else 0)
                                  if line is not None else None))
    return argv


def _env(res: Resource, c: dict[str, Any], sources: Sources) -> dict[str, Value]:
    env: dict[str, Value] = {}
    for src in items(c.get("envFrom")):
        src = mapping(src)
        prefix = str(src.get("prefix") or "")
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref in src:
                found = sources.get(kind, res.namespace, mapping(src[ref]).get("name"))
                if found is not None:
                    owner, data = found
                    for k, v in data.items():
                        env[prefix + k] = Value(v, owner, source_line(owner, k))
    for e in items(c.get("env")):
        e = mapping(e)
        name = str(e.get("name", ""))
        if e.get("value") is not None:
            env[name] = Value(str(e["value"]), res, line_of(e, "value"))
            continue
        frm = mapping(e.get("valueFrom"))
        for kind, ref in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            sel = mapping(frm.get(ref))
            found = sources.get(kind, res.namespace, sel.get("name")) if sel else None
            if found is not None and str(sel.get("key")) in found[1]:
                key = str(sel.get("key"))
                env[name] = Value(found[1][key], found[0], source_line(found[0], key))
    return env


def _volume_sources(vol: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """("ConfigMap" | "Secret", its volume source) of a configMap, secret or projected volume."""
    if "configMap" in vol:
        yield "ConfigMap", mapping(vol["configMap"])
    if "secret" in vol:
        sec = mapping(vol["secret"])
        yield "Secret", {**sec, "name": sec.get("secretName")}
    for p in items(mapping(vol.get("projected")).get("sources")):
        p = mapping(p)
        if "configMap" in p:
            yield "ConfigMap", mapping(p["configMap"])
        if "secret" in p:
            yield "Secret", mapping(p["secret"])


def _volume_files(res: Resource, vol: dict[str, Any], sources: Sources
                  ) -> dict[str, ConfigFile]:
    """Relative path in the volume -> file, for the ConfigMaps/Secrets of a volume."""
    files: dict[str, ConfigFile] = {}
    for kind, src in _volume_sources(vol):
        found = sources.get(kind, res.namespace, src.get("name"))
        if found is None:
            continue
        owner, data = found
        listed = [mapping(i) for i in items(src.get("items"))]
        pairs = [(str(i.get("key")), str(i.get("path") or i.get("key"))) for i in listed] \
            if listed else [(k, k) for k in data]
        for key, rel in pairs:
            if key in data:
                files[posixpath.normpath(rel)] = ConfigFile(rel, data[key], owner, key)
    return files


def _files(res: Resource, spec: dict[str, Any], c: dict[str, Any], sources: Sources
           ) -> dict[str, ConfigFile]:
    vols = {str(mapping(v).get("name")): mapping(v) for v in items(spec.get("volumes"))}
    files: dict[str, ConfigFile] = {}
    for m in items(c.get("volumeMounts")):
        m = mapping(m)
        vol = vols.get(str(m.get("name")))
        mount = str(m.get("mountPath", ""))
        if vol is None or not mount:
            continue
        inside = _volume_files(res, vol, sources)
        sub = m.get("subPath")
        for rel, f in inside.items():
            if sub:
                if rel == posixpath.normpath(str(sub)):
                    files[posixpath.normpath(mount)] = ConfigFile(mount, f.text, f.res, f.key)
            else:
                path = posixpath.normpath(posixpath.join(mount, rel))
                files[path] = ConfigFile(path, f.text, f.res, f.key)
    return files


def _claim_templates(res: Resource) -> dict[str, dict[str, Any]]:
    if res.kind != "StatefulSet":
        return {}
    spec = mapping(res.body.get("spec"))
    return {str(mapping(mapping(t).get("metadata")).get("name")): mapping(t)
            for t in items(spec.get("volumeClaimTemplates"))}


_KINDS = (("persistentVolumeClaim", VolumeKind.PVC), ("emptyDir", VolumeKind.EMPTY_DIR),
          ("hostPath", VolumeKind.HOST_PATH), ("ephemeral", VolumeKind.EPHEMERAL),
          ("configMap", VolumeKind.CONFIG), ("secret", VolumeKind.CONFIG),
          ("projected", VolumeKind.CONFIG), ("downwardAPI", VolumeKind.CONFIG))


def _under(path: str, mount: str) -> bool:
    mount = mount.rstrip("/") or "/"
    return path == mount or path.startswith(mount if mount == "/" else mount + "/")


def volume_for(res: Resource, spec: dict[str, Any], c: dict[str, Any], path: str) -> Backing:
    """The volume that backs `path` in container `c`: the mount with the longest mountPath
    that contains it; none: the container's filesystem."""
    path = posixpath.normpath(path)
    best: dict[str, Any] | None = None
    for m in items(c.get("volumeMounts")):
        m = mapping(m)
        mount = posixpath.normpath(str(m.get("mountPath", "")))
        if m.get("mountPath") and _under(path, mount) and (
                best is None or len(mount) > len(posixpath.normpath(str(best["mountPath"])))):
            best = m
    if best is None:
        return Backing(VolumeKind.NONE, "", "", line_of(c) or res.line)
    name, mount = str(best.get("name")), str(best["mountPath"])
    for v in items(spec.get("volumes")):
        v = mapping(v)
        if str(v.get("name")) == name:
            for key, kind in _KINDS:
                if key in v:
                    return Backing(kind, name, mount, line_of(v, key))
            return Backing(VolumeKind.OTHER, name, mount, line_of(v))
    template = _claim_templates(res).get(name)
    if template is not None:
        return Backing(VolumeKind.CLAIM_TEMPLATE, name, mount, line_of(template))
    return Backing(VolumeKind.OTHER, name, mount, line_of(best))  # undeclared: the API refuses


def resolve(resources: Sequence[Resource], *, init: bool = False,
            sources: Sources | None = None) -> Iterator[Container]:
    """Every container of every workload with its effective configuration (main containers;
    init containers too when `init`)."""
    sources = sources or Sources(resources)
    for res, spec in workloads(resources):
        for c, is_init in containers(spec, init=init):
            yield Container(res, spec, c, is_init, _argv(res, c), _env(res, c, sources),
                            _files(res, spec, c, sources))


def replicas(res: Resource) -> int:
    """Pods a workload runs (its `replicas`, 1 when unset; 1 for a bare Pod)."""
    value = mapping(res.body.get("spec")).get("replicas", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1

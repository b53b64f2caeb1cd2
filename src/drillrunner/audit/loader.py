"""Reads manifests from files, folders (recursively: *.yaml, *.yml, *.json) and `-` (stdin).

Multi-document YAML and `kind: List` are expanded. Documents that are not Kubernetes objects
(kustomization.yaml, kustomize patches, plain config files) are skipped, not errors. Input
that cannot be read or parsed raises AuditInputError naming the file, the line when there
is one, and the reason.

Manifests are untrusted input, so reading them is bounded (MAX_*): file size, total size,
documents per file, nesting depth, and the nodes that aliases add (a few hundred bytes of
nested aliases, a "billion laughs", would otherwise expand to 10^9 nodes when the rules walk
them). libyaml composes each document, sharing aliased nodes as it does, and the bounds are
checked on that graph before anything is built from it.

What the API server would refuse is refused too, with its line, rather than read one way
when the cluster would read it another (or not at all):
- a key written twice in a mapping (kubectl's strict field validation rejects it; PyYAML and
  some tools silently keep the last one);
- in metadata (the object's and its pod and claim templates'): a non-string key, or a
  label or annotation value that is not a string (`on`, `yes`, `1`, `true` unquoted);
- a ConfigMap's data or binaryData, a Secret's data or stringData, or a container's env
  value that is not a string (a number or boolean that would have to be quoted).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from drillrunner.audit.k8s import containers, data_line, items, mapping, pod_spec
from drillrunner.audit.model import LineDict, LineList, Resource, line_of
from drillrunner.core.errors import DrillError, ExitCode

SUFFIXES = (".yaml", ".yml", ".json")
# Kustomize's own files: configuration of the build, not objects sent to the cluster.
NOT_RESOURCES = {"Kustomization", "Component"}
# Tool configuration, not cluster objects: kustomize's and kind's own files.
NOT_RESOURCE_GROUPS = ("kustomize.config.k8s.io/", "kind.x-k8s.io/")

MiB = 1024 * 1024
MAX_FILE_BYTES = 8 * MiB  # the API server takes at most 3 MiB per request
MAX_TOTAL_BYTES = 64 * MiB
MAX_DOCUMENTS = 10_000  # per file
MAX_DEPTH = 200  # nested mappings and sequences; Kubernetes objects (CRDs too) stay far below
MAX_ALIAS_NODES = 100_000  # per file: nodes reached again through aliases

try:  # libyaml's parser is ~10x faster; the pure-Python one is the fallback
    from yaml import CSafeLoader as _Base
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Base  # type: ignore[assignment]

_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"  # the `=` key, read as a string as PyYAML does
_DOCUMENT_START = re.compile(r"^---(?=[ \t\r\n]|$)", re.M)
_ACTIVE = (-1, 0)  # a node being measured: reaching it again is a cycle


class AuditInputError(DrillError):
    """A manifest could not be read or parsed: exit 2, with the file and the reason."""

    exit_code = ExitCode.USAGE


class Refused(Exception):
    """Input refused at a 1-based line (None: the whole file); parse() names the file."""

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


class _Loader(_Base):
    """The safe loader, building LineDict / LineList and refusing duplicate keys."""

    own_pairs: dict[int, int]  # mapping node with a merge key -> its own pairs (_Bounds)

    def construct_line_map(self, node: MappingNode) -> Iterator[LineDict]:
        data = LineDict(node.start_mark.line + 1)
        yield data  # before the values: the constructor's protocol for shared nodes
        pairs, first_own = node.value, 0
        if id(node) in self.own_pairs:  # `<<: *defaults`
            pairs = self._merged(node)
            first_own = len(pairs) - self.own_pairs[id(node)]
        lines = data.lines
        written = lines if first_own == 0 else {}
        for i, (key_node, value_node) in enumerate(pairs):
            key = "=" if key_node.tag == _VALUE else self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                if i >= first_own:
                    if key in written:
                        raise Refused(line, f"duplicate key {key!r} (first at line "
                                            f"{written[key]}): the API server refuses it")
                    written[key] = line
                lines[key] = line
            except TypeError:
                raise Refused(line, "a mapping or sequence used as a key") from None
            data[key] = self.construct_object(value_node)
            if value_node.__class__ is ScalarNode and value_node.style == "|":
                if data.blocks is None:
                    data.blocks = {}
                data.blocks[key] = value_node.start_mark.line + 1

    def _merged(self, node: MappingNode) -> list[tuple[Node, Node]]:
        """The pairs of a mapping with its merge keys resolved as YAML specifies (PyYAML's
        own flattening lets a merged key win over the mapping's own key): later pairs win,
        so: the last merged mapping's, ..., the first's, then its own. The node is not
        changed: other mappings merge it too."""
        layers: list[list[tuple[Node, Node]]] = []
        for key_node, value_node in node.value:
            if key_node.tag != _MERGE:
                continue
            for source in (value_node.value if isinstance(value_node, SequenceNode)
                           else [value_node]):
                if not isinstance(source, MappingNode):
                    raise Refused(source.start_mark.line + 1, "`<<` merges a mapping or a "
                                  f"list of mappings, not {source.id}")
                layers.append(self._merged(source) if id(source) in self.own_pairs
                              else source.value)
        own = [(k, v) for k, v in node.value if k.tag != _MERGE]
        return [pair for layer in reversed(layers) for pair in layer] + own

    def construct_line_seq(self, node: SequenceNode) -> Iterator[LineList]:
        data = LineList(node.start_mark.line + 1, [n.start_mark.line + 1 for n in node.value])
        yield data
        data.extend(self.construct_object(n) for n in node.value)


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_line_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_line_seq)


class _Bounds:
    """Depth and alias expansion of composed documents, measured on the node graph (each
    node once) before they are constructed; notes the mappings that merge others."""

    def __init__(self) -> None:
        self.aliased = 0

    def check(self, root: Node, own_pairs: dict[int, int]) -> None:
        self.seen: dict[int, tuple[int, int]] = {}  # node -> (nodes under it, height)
        self.own_pairs = own_pairs
        own_pairs.clear()
        if not isinstance(root, ScalarNode):
            self._measure(root, 1)

    def _measure(self, node: Node, depth: int) -> tuple[int, int]:
        if depth > MAX_DEPTH:
            raise Refused(node.start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels")
        known = self.seen.get(id(node))
        if known is not None:
            return self._alias(node, depth, known)
        self.seen[id(node)] = _ACTIVE
        size, height, merges = 1, 0, False
        children = node.value if node.__class__ is SequenceNode else [
            n for pair in node.value for n in pair]
        for child in children:
            if child.__class__ is ScalarNode:
                size += 1
                merges = merges or child.tag == _MERGE
            else:
                sub, sub_height = self._measure(child, depth + 1)
                size += sub
                height = max(height, sub_height)
        if merges and node.__class__ is MappingNode:
            self.own_pairs[id(node)] = sum(1 for k, _ in node.value if k.tag != _MERGE)
        self.seen[id(node)] = (size, height + 1)
        return size, height + 1

    def _alias(self, node: Node, depth: int, known: tuple[int, int]) -> tuple[int, int]:
        line = node.start_mark.line + 1
        size, height = known
        if known is _ACTIVE:
            raise Refused(line, "an alias inside the node it refers to (a cycle)")
        self.aliased += size
        if self.aliased > MAX_ALIAS_NODES:
            raise Refused(line, f"aliases add more than {MAX_ALIAS_NODES} nodes (an alias bomb)")
        if depth + height > MAX_DEPTH:
            raise Refused(line, f"nested deeper than {MAX_DEPTH} levels (through an alias)")
        return known


def documents(text: str) -> Iterator[Any]:
    """The documents of a YAML stream, within bounds; raises Refused or yaml.YAMLError."""
    if text.count("---") > MAX_DOCUMENTS:  # refused before parsing them; counted exactly below
        for n, marker in enumerate(_DOCUMENT_START.finditer(text), 1):
            if n > MAX_DOCUMENTS:
                raise Refused(text.count("\n", 0, marker.start()) + 1,
                              f"more than {MAX_DOCUMENTS} documents in one file")
    loader = _Loader(text)
    loader.own_pairs = {}
    bounds = _Bounds()
    try:
        count = 0
        while loader.check_node():
            node = loader.get_node()
            count += 1
            if count > MAX_DOCUMENTS:
                line = node.start_mark.line + 1 if node is not None else None
                raise Refused(line, f"more than {MAX_DOCUMENTS} documents in one file")
            if node is not None:
                bounds.check(node, loader.own_pairs)
            yield loader.construct_document(node)
    except RecursionError:  # the pure-Python composer recurses per level
        raise Refused(None, f"nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def load_paths(paths: Sequence[str]) -> list[Resource]:
    resources: list[Resource] = []
    budget = [MAX_TOTAL_BYTES]
    for raw in paths:
        if raw == "-":
            resources += parse(_read_stdin(budget), "-")
            continue
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
            for f in files:
                resources += parse(_read(f, budget), str(f))
        elif path.exists():
            resources += parse(_read(path, budget), raw)
        else:
            raise AuditInputError(f"{raw}: no such file or folder")
    return resources


def _read(path: Path, budget: list[int]) -> str:
    try:
        with path.open("rb") as f:  # bounded: a FIFO or /dev/zero has no size to check first
            return _decode(f.read(MAX_FILE_BYTES + 1), str(path), budget)
    except OSError as exc:
        raise AuditInputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _read_stdin(budget: list[int]) -> str:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is not None:
        return _decode(buffer.read(MAX_FILE_BYTES + 1), "-", budget)
    text = str(sys.stdin.read(MAX_FILE_BYTES + 1))  # a text stream (tests)
    return _decode(text.encode(), "-", budget)


def _decode(data: bytes, source: str, budget: list[int]) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise AuditInputError(f"{source}: larger than {MAX_FILE_BYTES // MiB} MiB, the limit "
                              "per file")
    budget[0] -= len(data)
    if budget[0] < 0:
        raise AuditInputError(f"{source}: the input exceeds {MAX_TOTAL_BYTES // MiB} MiB in "
                              "total, the limit")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AuditInputError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})"
                              ) from None


def parse(text: str, source: str) -> list[Resource]:
    try:
        return [r for i, doc in enumerate(documents(text))
                for r in _objects(doc, source, f"{source}#{i}")]
    except Refused as exc:
        where = f":{exc.line}" if exc.line else ""
        raise AuditInputError(f"{source}{where}: {exc.reason}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise AuditInputError(f"{source}{where}: not valid YAML ({reason})") from None


def _objects(doc: Any, file: str, source: str) -> Iterator[Resource]:
    if not isinstance(doc, dict):
        return  # empty documents, scalars, lists of patches: not objects
    kind, api = doc.get("kind"), doc.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api, str) or kind in NOT_RESOURCES:
        return
    if api.startswith(NOT_RESOURCE_GROUPS):
        return
    if kind == "List" or (kind.endswith("List") and isinstance(doc.get("items"), list)):
        for j, item in enumerate(doc.get("items") or []):
            yield from _objects(item, file, f"{source}[{j}]")
        return
    meta = doc["metadata"] if isinstance(doc.get("metadata"), dict) else {}
    res = Resource(kind, str(meta.get("namespace") or ""), str(meta.get("name") or "?"), doc,
                   source, file, line_of(doc))
    for line, reason in _refusals(res):
        raise Refused(line, f"{res.ref}: {reason}")
    yield res


def embedded(text: str) -> Any:
    """A config written into a ConfigMap or env value, parsed as YAML/JSON when it is one
    (one document), else None; within the same bounds (raises Refused, its lines counting
    from the value's first line)."""
    if "\n" not in text and ":" not in text:
        return None
    try:
        docs = documents(text)
        doc = next(docs, None)
        return None if next(docs, None) is not None else doc
    except yaml.YAMLError:
        return None


def _embedded_refusal(value: Any) -> Refused | None:
    if isinstance(value, str):
        try:
            embedded(value)
        except Refused as exc:
            return exc
    return None


# Maps of strings in the API (map[string]string): a number or boolean value is refused.
_STRING_MAPS = {"ConfigMap": ("data", "binaryData"), "Secret": ("data", "stringData")}


def _refusals(res: Resource) -> Iterator[tuple[int | None, str]]:
    """What the API server would refuse (or rename) in a document, and the configs written
    into values (the rules parse them) that break the bounds, each with its line."""
    spec = mapping(res.body.get("spec"))
    job = mapping(spec.get("jobTemplate"))
    metas = [("metadata", res.body.get("metadata")),
             ("spec.template.metadata", mapping(spec.get("template")).get("metadata")),
             ("spec.jobTemplate.metadata", job.get("metadata")),
             ("spec.jobTemplate.spec.template.metadata",
              mapping(mapping(mapping(job.get("spec")).get("template")).get("metadata")))]
    metas += [(f"spec.volumeClaimTemplates[{i}].metadata", mapping(t).get("metadata"))
              for i, t in enumerate(items(spec.get("volumeClaimTemplates")))]
    for path, meta in metas:
        if isinstance(meta, dict):
            yield from _metadata(meta, path)
    for field in _STRING_MAPS.get(res.kind, ()):
        yield from _string_map(res.body.get(field), field, keys=False)
    for key, value in mapping(res.body.get("data")).items() if res.kind == "ConfigMap" else ():
        if (exc := _embedded_refusal(value)) is not None:
            yield data_line(res, str(key), exc.line), f"data.{key}: {exc.reason}"
    for c, _ in containers(pod_spec(res) or {}):
        for env in items(c.get("env")):
            name, value = mapping(env).get("name"), mapping(env).get("value")
            if value is not None and not isinstance(value, str):
                yield (line_of(env, "value"),
                       f"env {name} value is {_what(value)}, not a string: quote it")
            elif (exc := _embedded_refusal(value)) is not None:
                yield line_of(env, "value"), f"env {name}: {exc.reason}"


def _metadata(meta: dict[Any, Any], path: str) -> Iterator[tuple[int | None, str]]:
    for key, value in meta.items():
        if not isinstance(key, str):
            yield line_of(meta, key), f"{path} key {key!r} is {_what(key)}, not a string"
        elif key in ("name", "namespace", "generateName") and value is not None \
                and not isinstance(value, str):
            yield line_of(meta, key), f"{path}.{key} is {_what(value)}, not a string: quote it"
    for field in ("labels", "annotations"):
        yield from _string_map(meta.get(field), f"{path}.{field}", keys=True)


def _string_map(value: Any, path: str, *, keys: bool) -> Iterator[tuple[int | None, str]]:
    if not isinstance(value, dict):
        return
    for k, v in value.items():
        if keys and not isinstance(k, str):
            yield line_of(value, k), f"{path} key {k!r} is {_what(k)}, not a string: quote it"
        elif v is not None and not isinstance(v, str):
            yield line_of(value, k), f"{path}.{k} is {_what(v)}, not a string: quote it"


def _what(value: Any) -> str:
    if isinstance(value, bool):  # before int: a bool is an int
        return "a boolean (unquoted true/false/yes/no/on/off in YAML 1.1)"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"

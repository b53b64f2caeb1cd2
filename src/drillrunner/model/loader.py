"""Load scenario and drill files; every problem is reported as `file:line:col: message`.

Validation is a pass of its own before anything runs: the schema first, then each step's
action name and arguments bound to the registered function's signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from drillrunner.core.units import parse_rate
from drillrunner.model.scenario import ClaimRegistry, Drill, Scenario, WorkloadStep

MAX_BYTES = 1024 * 1024
MAX_ALIASES = 100  # an alias bomb expands exponentially when validated
MAX_NODES = 100_000  # ...and a few aliases of aliases are enough: bound the expanded size
MAX_DEPTH = 200  # nesting deeper than any real file; deeper ones exhaust the stack
PathElem = str | int
KINDS: dict[str, type[Scenario] | type[Drill] | type[ClaimRegistry]] = {
    "Scenario": Scenario, "Drill": Drill, "ClaimRegistry": ClaimRegistry}


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


@dataclass(frozen=True)
class Document:
    path: Path
    model: Scenario | Drill | ClaimRegistry
    root: yaml.Node

    def position(self, loc: Sequence[PathElem]) -> tuple[int, int]:
        return position(self.root, loc)


def position(root: yaml.Node, loc: Sequence[PathElem], *, at_key: bool = False
             ) -> tuple[int, int]:
    """1-based line and column of the deepest node of `loc` found in the YAML tree
    (of the last key itself with `at_key`, e.g. for a key that should not be there)."""
    node = root
    for i, elem in enumerate(loc):
        nxt = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == elem:
                    nxt = key if at_key and i == len(loc) - 1 else value
                    break
            if nxt is None:
                # pydantic's own names ("args", "name") do not exist in the file: the step
                # is written as `- action.name: {args}`, so descend into that single value.
                actions = [(k, v) for k, v in node.value if k.value != "after"]
                if elem in ("args", "name") and len(actions) == 1:
                    nxt = actions[0][1] if elem == "args" else actions[0][0]
        elif (isinstance(node, yaml.SequenceNode) and isinstance(elem, int)
              and 0 <= elem < len(node.value)):
            nxt = node.value[elem]
        if nxt is None:
            break
        node = nxt
    return node.start_mark.line + 1, node.start_mark.column + 1


def _loc_text(loc: Sequence[PathElem]) -> str:
    out = ""
    for elem in loc:
        out += f"[{elem}]" if isinstance(elem, int) else (f".{elem}" if out else str(elem))
    return out


def _parse(path: Path) -> tuple[Any, yaml.Node | None, list[Problem]]:
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, None, [Problem(name, 1, 1, f"cannot read file: {exc.strerror or exc}")]
    if len(raw) > MAX_BYTES:
        return None, None, [Problem(name, 1, 1, f"file is larger than {MAX_BYTES} bytes")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, None, [Problem(name, line, 1, "file is not valid UTF-8")]
    if deep := _too_deep(text):
        return None, None, [Problem(name, deep[0], deep[1], deep[2])]
    try:
        aliases = sum(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, yaml.SafeLoader))
        if aliases > MAX_ALIASES:
            return None, None, [Problem(name, 1, 1, f"too many YAML aliases ({aliases})")]
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None and (too_big := _too_big(root)):
            line, col = root.start_mark.line + 1, root.start_mark.column + 1
            return None, None, [Problem(name, line, col, too_big)]
        data = yaml.SafeLoader("").construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, None, [Problem(name, line, col, f"invalid YAML: {exc.problem or exc}")]
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return None, None, [Problem(name, 1, 1, f"invalid YAML: {exc}")]
    if root is None or not isinstance(data, dict):
        return None, None, [Problem(name, 1, 1, "expected a mapping with apiVersion and kind")]
    return data, root, []


def _too_deep(text: str) -> tuple[int, int, str] | None:
    """A cheap look before parsing: PyYAML's scanner takes quadratic time in the nesting of
    flow collections (`[[[[...`) and of indentation, so a few KiB can take minutes.
    Brackets inside quoted strings count too: no real file comes near the limit."""
    depth = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        indent = len(line) - len(line.lstrip(" "))
        if indent > 4 * MAX_DEPTH:
            return lineno, 1, f"indented deeper than {4 * MAX_DEPTH} columns"
        for col, ch in enumerate(line, 1):
            if ch in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    return lineno, col, f"brackets nested deeper than {MAX_DEPTH} levels"
            elif ch in "]}" and depth:
                depth -= 1
    return None


def _too_big(root: yaml.Node) -> str:
    """Why the document, with its aliases expanded, is too large or deep ("" if it is not).
    Sizes are memoized per node, so shared (aliased) nodes cost one visit."""
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    # Iterative post-order walk: a recursive one would overflow on deep nesting.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if not done:
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            if len(stack) > 10 * MAX_NODES:
                return f"the document has more than {MAX_NODES} nodes"
            continue
        sizes[id(node)] = min(1 + sum(sizes.get(id(c), 1) for c in children), 10 * MAX_NODES)
        depths[id(node)] = 1 + max((depths.get(id(c), 1) for c in children), default=0)
        if sizes[id(node)] > MAX_NODES:
            return f"the document expands to more than {MAX_NODES} nodes (an alias bomb?)"
        if depths[id(node)] > MAX_DEPTH:
            return f"the document is nested deeper than {MAX_DEPTH} levels"
    return ""


def load(path: Path) -> tuple[Document | None, list[Problem]]:
    """Parse and schema-check one file."""
    data, root, problems = _parse(path)
    if problems or root is None:
        return None, problems
    kind = data.get("kind")
    model_cls = KINDS.get(kind) if isinstance(kind, str) else None
    if model_cls is None:
        line, col = position(root, ["kind"])
        return None, [Problem(str(path), line, col,
                              "kind: must be Scenario, Drill or ClaimRegistry")]
    try:
        model = model_cls.model_validate(data)
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            loc = [e for e in err["loc"] if isinstance(e, str | int)]
            line, col = position(root, loc, at_key=err["type"] == "extra_forbidden")
            msg = _message(err)
            out.append(Problem(str(path), line, col, f"{_loc_text(loc) or 'file'}: {msg}"))
        return None, out
    return Document(path, model, root), []


def check_actions(doc: Document, catalog: Any, claims: set[str] | None = None
                  ) -> list[Problem]:
    """Every step names a registered action of the right kind with arguments that bind,
    and every claim cited is in the claim registry (when one is given)."""
    from drillrunner.core.actions import ActionKind

    if not isinstance(doc.model, Scenario):
        return []
    s = doc.model
    problems: list[Problem] = []
    for i, claim in enumerate(s.metadata.claims):
        if claims is not None and claim not in claims:
            line, col = doc.position(["metadata", "claims", i])
            problems.append(Problem(str(doc.path), line, col,
                                    f"metadata.claims[{i}]: unknown claim {claim!r} "
                                    "(see drills/claims.yaml)"))

    def bind(loc: list[PathElem], name: str, kinds: set[ActionKind], args: dict[str, Any]) -> None:
        spec = catalog.get(name)
        if spec is None or spec.kind not in kinds:
            what = " or ".join(sorted(k.value for k in kinds))
            hint = ", ".join(n for k in kinds for n in catalog.names(k))
            line, col = doc.position(loc)
            problems.append(Problem(str(doc.path), line, col,
                                    f"{_loc_text(loc)}: unknown {what} {name!r} (known: {hint})"))
            return
        try:
            spec.bind(args)
        except ValidationError as exc:
            for err in exc.errors():
                sub = [*loc, *[e for e in err["loc"] if isinstance(e, str | int)]]
                line, col = position(doc.root, sub, at_key=err["type"] == "extra_forbidden")
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(Problem(str(doc.path), line, col, f"{_loc_text(sub)}: {msg}"))

    probe, check = {ActionKind.PROBE}, {ActionKind.CHECK}
    for i, p in enumerate(s.steady_state):
        bind(["steady_state", i, "probe"], p.probe, probe, p.args)
    for i, p in enumerate(s.recovery.probes):
        bind(["recovery", "probes", i, "probe"], p.probe, probe, p.args)
    for i, w in enumerate(s.workload):
        problems += _rate_problems(doc, i, w)
        args = {k: v for k, v in w.args.items() if k != "rate"}
        bind(["workload", i, w.name], w.name, {ActionKind.WORKLOAD}, args)
    for i, f in enumerate(s.faults):
        bind(["faults", i, f.name], f.name, {ActionKind.FAULT, ActionKind.ACTION}, f.args)
    for i, r in enumerate(s.rollback):
        bind(["rollback", i, r.name], r.name, {ActionKind.ACTION}, r.args)
    for i, c in enumerate(s.verify):
        bind(["verify", i, "check"], c.check, check, c.args)
    if s.faults and not any(catalog.get(f.name) and catalog.get(f.name).kind == ActionKind.FAULT
                            for f in s.faults):
        line, col = doc.position(["faults"])
        problems.append(Problem(str(doc.path), line, col, "faults: no step is a fault"))
    return problems + _blast_radius_problems(doc, catalog)


def _blast_radius_problems(doc: Document, catalog: Any) -> list[Problem]:
    """The faults' disruptions add up (each lasts until the rollback): the sum may not
    exceed the scenario's blast_radius (1 member when unset; "all" allows a whole tier)."""
    from drillrunner.core.actions import ALL, ActionKind
    from drillrunner.model.scenario import DEFAULT_BLAST_RADIUS

    s = doc.model
    assert isinstance(s, Scenario)
    limit = s.blast_radius if s.blast_radius is not None else DEFAULT_BLAST_RADIUS
    if limit == ALL:
        return []
    total = 0
    for i, f in enumerate(s.faults):
        spec = catalog.get(f.name)
        if spec is None or spec.kind is not ActionKind.FAULT:
            continue
        disrupts = getattr(spec, "disrupts", 1)
        total = -1 if disrupts == ALL or total < 0 else total + int(disrupts)
        if total < 0 or total > int(limit):
            what = "a whole tier" if total < 0 else f"{total} members"
            line, col = doc.position(["faults", i, f.name])
            return [Problem(str(doc.path), line, col,
                            f"faults[{i}].{f.name}: the faults disrupt {what} at once, more "
                            f"than blast_radius {limit}"
                            + ("" if s.blast_radius is not None else " (the default)")
                            + "; set 'blast_radius:' to allow it")]
    return []


def _rate_problems(doc: Document, i: int, w: WorkloadStep) -> list[Problem]:
    if "rate" not in w.args:
        return []
    try:
        parse_rate(w.args["rate"])
    except ValueError as exc:
        line, col = doc.position(["workload", i, w.name, "rate"])
        return [Problem(str(doc.path), line, col, f"workload[{i}].{w.name}.rate: {exc}")]
    return []


def _message(err: Any) -> str:
    """pydantic's message, said the way a scenario author needs it."""
    if err.get("type") == "too_short" and tuple(err.get("loc", ())) == ("faults",):
        return "a scenario needs at least one fault: without one there is nothing to verify"
    return str(err["msg"]).removeprefix("Value error, ")

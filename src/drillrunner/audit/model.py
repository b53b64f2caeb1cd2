"""What the audit reads (resources) and what it reports (findings).

The loader builds every mapping as a LineDict and every sequence as a LineList: plain dicts
and lists (rules read them as such) that also know the 1-based line each key or item was
written on, so a finding points at the offending field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class LineDict(dict[Any, Any]):
    """A mapping as read: `line` of its first key, `lines` of each key, and `blocks`: for
    values written as literal blocks (`key: |`), the line of the `|`, which maps the lines
    of a config file embedded in a ConfigMap to lines of the manifest."""

    __slots__ = ("blocks", "line", "lines")

    def __init__(self, line: int = 0) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[Any, int] = {}
        self.blocks: dict[Any, int] | None = None


class LineList(list[Any]):
    """A sequence as read: `line` of its start and `lines` of each item."""

    __slots__ = ("line", "lines")

    def __init__(self, line: int = 0, lines: list[int] | None = None) -> None:
        super().__init__()
        self.line = line
        self.lines = lines or []


def line_of(value: Any, key: Any = None) -> int | None:
    """1-based line of `value`, or of its key (or index) `key`; None when that is absent or
    `value` was not read from a file, so callers can fall back: `line_of(a, k) or ...`."""
    if not isinstance(value, LineDict | LineList):
        return None
    if key is None:
        return value.line or None
    if isinstance(value, LineDict):
        return value.lines.get(key)
    return value.lines[key] if isinstance(key, int) and 0 <= key < len(value.lines) else None


@dataclass(frozen=True)
class Resource:
    """One Kubernetes object of the input, with where it was read from."""

    kind: str
    namespace: str
    name: str
    body: dict[str, Any]
    source: str  # file path or "-", with the document's index (and item's, in a List)
    file: str = ""  # file path or "-"
    line: int | None = None  # 1-based line of the object's first field

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace or '-'}/{self.name}"


@dataclass(frozen=True)
class Problem:
    """What a rule yields; the runner adds the rule's name and claims."""

    resource: Resource
    message: str
    container: str | None = None
    line: int | None = None  # of the offending field; None: the resource's own line


@dataclass(frozen=True)
class Finding:
    """One problem found, as `drill audit --format json` and the journal carry it.
    A dataclass, not a pydantic model: the audit's start-up stays cheap."""

    claim: str  # the rule's first (main) claim
    claims: list[str]
    rule: str
    resource: str  # kind/namespace/name
    message: str
    source: str  # file#document (#document[item] inside a List)
    file: str
    line: int | None  # 1-based, of the offending field (or of the object that lacks it)
    container: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

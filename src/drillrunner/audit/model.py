"""What the audit reads (resources) and what it reports (findings)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Resource:
    """One Kubernetes object of the input, with where it was read from."""

    kind: str
    namespace: str
    name: str
    body: dict[str, Any]
    source: str  # file path or "-", with the document's index

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace or '-'}/{self.name}"


@dataclass(frozen=True)
class Problem:
    """What a rule yields; the runner adds the rule's name and claims."""

    resource: Resource
    message: str
    container: str | None = None


@dataclass(frozen=True)
class Finding:
    """One problem found, as `drill audit --format json` and the journal carry it.
    A dataclass, not a pydantic model: the audit's start-up stays cheap."""

    claim: str  # the rule's first (main) claim
    claims: list[str]
    rule: str
    resource: str  # kind/namespace/name
    message: str
    source: str
    container: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

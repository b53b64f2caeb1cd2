"""Find scenarios and drills by name or path, and validate them together."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drillrunner.core.errors import InvalidInput, UsageError
from drillrunner.model.loader import Document, Problem, check_actions, load
from drillrunner.model.scenario import ClaimRegistry, Drill, Scenario

REGISTRY = "claims.yaml"


@dataclass(frozen=True)
class Library:
    root: Path

    @property
    def scenario_dir(self) -> Path:
        return self.root / "scenarios"

    @property
    def drill_dir(self) -> Path:
        return self.root / "drills"

    def files(self) -> list[Path]:
        found: list[Path] = []
        for folder in (self.scenario_dir, self.drill_dir):
            if folder.is_dir():
                found += sorted(p for p in folder.glob("*.y*ml") if p.suffix in (".yaml", ".yml"))
        return found

    def find(self, ref: str) -> Path:
        """A path as given, else a scenario or drill of that name (never the claim registry)."""
        path = Path(ref)
        if path.suffix in (".yaml", ".yml") or "/" in ref:
            if not _exists(path):
                raise UsageError(f"{ref}: no such file")
            return path
        if ref == REGISTRY.removesuffix(".yaml"):
            raise UsageError(_not_runnable(ref))
        for folder in (self.drill_dir, self.scenario_dir):
            for suffix in (".yaml", ".yml"):
                if _exists(candidate := folder / f"{ref}{suffix}"):
                    return candidate
        known = ", ".join(p.stem for p in self.files() if p.name != REGISTRY) or "none"
        raise UsageError(f"unknown scenario or drill {ref!r} (known: {known})")

    def registry(self) -> ClaimRegistry | None:
        """The claim registry, or None when it is missing or invalid (validate says why)."""
        doc, _ = load(self.drill_dir / REGISTRY)
        return doc.model if doc is not None and isinstance(doc.model, ClaimRegistry) else None

    def claim_citations(self) -> dict[str, list[str]]:
        """claim id -> the names of every scenario of the library that cites it."""
        cited: dict[str, list[str]] = {}
        for path in self.files():
            doc, _ = load(path)
            if doc is not None and isinstance(doc.model, Scenario):
                for claim in doc.model.metadata.claims:
                    cited.setdefault(claim, []).append(doc.model.metadata.name)
        return {claim: sorted(names) for claim, names in sorted(cited.items())}

    def documents(self, paths: list[Path], catalog: Any) -> tuple[list[Document], list[Problem]]:
        registry = self.registry()
        claims = {c.id for c in registry.claims} if registry else None
        docs: list[Document] = []
        problems: list[Problem] = []
        for path in paths:
            doc, found = load(path)
            problems += found
            if doc is not None:
                problems += check_actions(doc, catalog, claims)
                docs.append(doc)
        return docs, problems

    def resolve(self, refs: list[str], catalog: Any) -> list[Document]:
        """Scenario documents to run, drills expanded in order; raises InvalidInput."""
        out: list[Document] = []
        problems: list[Problem] = []
        for ref in refs:
            docs, found = self.documents([self.find(ref)], catalog)
            problems += found
            for doc in docs:
                if isinstance(doc.model, Scenario):
                    out.append(doc)
                    continue
                if isinstance(doc.model, ClaimRegistry):
                    raise UsageError(_not_runnable(ref))
                assert isinstance(doc.model, Drill)
                for i, name in enumerate(doc.model.scenarios):
                    try:
                        path = self.find(name)
                    except UsageError as exc:
                        line, col = doc.position(["scenarios", i])
                        problems.append(Problem(str(doc.path), line, col, str(exc)))
                        continue
                    sub, sub_problems = self.documents([path], catalog)
                    problems += sub_problems
                    out += [d for d in sub if isinstance(d.model, Scenario)]
        if problems:
            raise InvalidInput([str(p) for p in problems])
        return out


def _not_runnable(ref: str) -> str:
    return (f"{ref!r} is the claim registry (drills/{REGISTRY}), not a scenario or drill: "
            "nothing to run; 'drill claims' shows the claims and what tests them")


def _exists(path: Path) -> bool:
    """False also for a name the OS refuses (too long, a NUL byte): it names no file."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False

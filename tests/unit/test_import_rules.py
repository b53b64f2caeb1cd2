"""Who may import whom (docs/architecture.md), checked on every import statement of src/,
lazy ones inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# Part -> the parts it may import (itself always). A part is drillrunner's top folder, or a
# top-level package of src/. `services.registry` may be imported by audit (the one list of
# services); `targets.base` (the capability protocols) by the engine.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "model": {"core"},
    "evidence": {"core"},
    "engine": {"core", "model", "evidence", "targets.base"},
    "targets": {"core", "engine.context", "targets"},
    "services": {"core", "engine", "evidence", "targets", "stack", "audit", "failfast",
                 "orderservice"},
    "stack": {"core", "targets", "services"},
    "report": {"core", "evidence", "model"},
    "audit": {"core", "services.registry"},
    "cli": {"*"},
    "orderservice": {"failfast"},
    "failfast": set(),
}


def _part(module: str) -> str:
    """'drillrunner.engine.runner' -> 'engine'; 'orderservice.app' -> 'orderservice'."""
    bits = module.split(".")
    if bits[0] == "drillrunner":
        return bits[1] if len(bits) > 1 else "core"
    return bits[0]


def _allowed(src: str, imported: str) -> bool:
    part, target = _part(src), _part(imported)
    if part == target or "*" in ALLOWED[part]:
        return True
    rest = imported.removeprefix("drillrunner.")
    return any(rest == a or rest.startswith(a + ".") for a in ALLOWED[part])


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from drillrunner.evidence import manifest` imports drillrunner.evidence.manifest
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    own = ("drillrunner", "orderservice", "failfast")
    return [(line, name) for line, name in found if name.split(".")[0] in own]


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "egg-info" not in str(p))


def test_every_part_is_ruled() -> None:
    parts = {_part(_module_name(p)) for p in _sources()}
    assert parts <= set(ALLOWED), f"parts without import rules: {parts - set(ALLOWED)}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_layers(path: Path) -> None:
    module = _module_name(path)
    bad = [f"{path.relative_to(SRC)}:{line}: {_part(module)} may not import {name}"
           for line, name in _imports(path) if not _allowed(module, name)]
    assert not bad, "\n".join(bad)


def test_the_rules_catch_a_forbidden_import(tmp_path: Path) -> None:
    assert not _allowed("drillrunner.engine.runner", "drillrunner.services.redis.client")
    assert not _allowed("drillrunner.report.html", "drillrunner.engine.journal")
    assert not _allowed("orderservice.app", "drillrunner.core.units")
    assert _allowed("drillrunner.engine.runner", "drillrunner.targets.base.Signal")
    assert _allowed("drillrunner.cli.run_cmds", "drillrunner.services.registry")

"""drill claims: the claim matrix of a bundle (or of the library when nothing ran yet)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from drillrunner.core.errors import UsageError

if TYPE_CHECKING:
    from drillrunner.model.library import Library
    from drillrunner.report.view import RunView


def _newest_bundle(root: Path) -> Path | None:
    found = sorted((root / "reports").glob("*/journal.jsonl"))
    return found[-1].parent if found else None


def _registry(lib: Library) -> list[dict[str, str]]:
    registry = lib.registry()
    if registry is None:
        raise UsageError("drills/claims.yaml is missing or invalid: run 'drill validate'")
    return [c.model_dump() for c in registry.claims]


def _view(lib: Library, bundle: Path | None) -> RunView:
    """The bundle's run, or an empty run over the library: every claim untested."""
    from drillrunner.report.view import RunView, load_run

    if bundle is None:
        from drillrunner.audit import citations

        return RunView(claims=_registry(lib), claim_citations=lib.claim_citations(),
                       audit_citations=citations())
    if not (bundle / "journal.jsonl").is_file():
        raise UsageError(f"{bundle}: no journal.jsonl (not an evidence bundle)")
    run = load_run(bundle)
    if not run.claims:  # a journal without the registry: the library's claims
        run.claims = _registry(lib)
    return run


def claims(
    bundle: Annotated[Path | None, typer.Argument(
        help="Bundle whose verdicts to show (default: the newest under reports/).")] = None,
) -> None:
    """The claim matrix: each claim's verdict, evidence strength, coverage and why."""
    from rich.console import Console
    from rich.table import Table

    from drillrunner.core.paths import project_root
    from drillrunner.model.library import Library
    from drillrunner.report.claims import claim_rows

    root = project_root()
    lib = Library(root)
    if bundle is None:
        bundle = _newest_bundle(root)
    rows = claim_rows(_view(lib, bundle))
    table = Table("claim", "verdict", "strength", "coverage", "tested by", "why",
                  title=f"claims (verdicts from {bundle or 'no run yet'})")
    for row in rows:
        table.add_row(row.id, row.verdict.value, row.strength_text, row.coverage_text,
                      ", ".join(row.tested_by) or "-", row.why)
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command()(claims)

"""validate, list, schema: reading scenario and drill files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from drillrunner.core.errors import InvalidInput, UsageError
from drillrunner.services.registry import full_catalog

if TYPE_CHECKING:
    from drillrunner.core.actions import Catalog
    from drillrunner.model.library import Library


def _library() -> Library:
    from drillrunner.core.paths import project_root
    from drillrunner.model.library import Library

    return Library(project_root())


def _catalog() -> Catalog:

    return full_catalog()


def validate(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Scenario or drill files or folders (default: scenarios/ and drills/).")] = None,
) -> None:
    """Check scenario and drill files; report every problem as file:line:col: message."""
    lib = _library()
    files: list[Path] = []
    for p in paths or [lib.scenario_dir, lib.drill_dir]:
        if p.is_dir():
            files += sorted(x for x in p.iterdir() if x.suffix in (".yaml", ".yml"))
        elif p.exists():
            files.append(p)
        else:
            raise UsageError(f"{p}: no such file or folder")
    if not files:
        raise UsageError("no scenario or drill files found")
    docs, problems = lib.documents(files, _catalog())
    from drillrunner.model.loader import Problem
    from drillrunner.model.scenario import Drill

    for doc in docs:
        if isinstance(doc.model, Drill):
            for i, name in enumerate(doc.model.scenarios):
                try:
                    lib.find(name)
                except UsageError as exc:
                    line, col = doc.position(["scenarios", i])
                    problems.append(Problem(str(doc.path), line, col, str(exc)))
    if problems:
        raise InvalidInput([str(p) for p in problems])
    typer.echo(f"{len(files)} file(s) valid")


def list_cmd() -> None:
    """List scenarios and drills with their titles and the claims they test."""
    from rich.console import Console
    from rich.table import Table

    from drillrunner.model.loader import load
    from drillrunner.model.scenario import Drill, Scenario

    table = Table("kind", "name", "title", "claims / scenarios")
    for path in _library().files():
        doc, problems = load(path)
        if doc is None:
            table.add_row("invalid", path.stem, str(problems[0]), "")
        elif isinstance(doc.model, Scenario):
            m = doc.model.metadata
            table.add_row("scenario", m.name, m.title, ", ".join(m.claims))
        elif isinstance(doc.model, Drill):
            table.add_row("drill", doc.model.metadata.name, doc.model.metadata.title,
                          ", ".join(doc.model.scenarios))
    Console().print(table)


def schema() -> None:
    """Print the JSON Schema of scenario and drill files."""
    from pydantic.json_schema import models_json_schema

    from drillrunner.model.scenario import Drill, Scenario

    refs, defs = models_json_schema([(Scenario, "validation"), (Drill, "validation")])
    doc = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "drill/v1 scenario or drill file",
        "oneOf": [refs[(Scenario, "validation")], refs[(Drill, "validation")]],
        **defs,
    }
    typer.echo(json.dumps(doc, indent=2))


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command("list")(list_cmd)
    app.command()(schema)

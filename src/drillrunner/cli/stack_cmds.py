"""drill stack up | down | status: the local stack of real servers."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Start, stop and inspect the local stack (real servers on 127.0.0.1).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"


def _state() -> Path:
    from drillrunner.core.paths import state_dir

    return state_dir()


def member_rows(target: Any) -> list[dict[str, Any]]:
    """Each member with its live role, read from the server itself."""
    from drillrunner.services.registry import live_roles

    rows = []
    for dep in target.deployments():
        roles = live_roles(target, dep.service)
        for m in dep.members():
            rows.append({"service": m.service, "name": m.name, "kind": m.kind,
                         "role": roles.get(m.name, "unknown"), "host": m.host, "port": m.port,
                         "pid": target.pid(m)})
    return rows


def _print_rows(rows: list[dict[str, Any]], fmt: Format) -> None:
    if fmt is Format.JSON:
        typer.echo(json.dumps(rows, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("service", "member", "role", "address", "pid")
    for r in rows:
        table.add_row(r["service"], r["name"], r["role"], f"{r['host']}:{r['port']}",
                      str(r["pid"] or "-"))
    Console().print(table)


@app.command()
def up(
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="A stack setting KEY=VALUE, e.g. redis.appendonly=false or "
        "timescaledb.synchronous=false (repeatable).")] = None,
    port_base: Annotated[int | None, typer.Option(
        help="First port of the stack; every member's port is offset from it "
        "(default 17000).")] = None,
    reset: Annotated[bool, typer.Option(
        help="Return to the default settings (keeping the ports) before applying --set."
    )] = False,
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.TABLE,
) -> None:
    """Start the local stack and wait for real readiness (idempotent).

    Settings given with --set stay in force until changed again or --reset.
    """
    from drillrunner.stack.local import LocalTarget
    from drillrunner.stack.settings import StackSettings, load_settings, save_settings

    state = _state()
    current = load_settings(state)
    if reset:  # back to the default settings, on the ports the stack already uses
        settings = StackSettings(port_base=current.port_base) if current else StackSettings()
    else:
        settings = current or StackSettings()
    if port_base is not None:
        settings = settings.model_copy(update={"port_base": port_base})
    settings = settings.with_overrides(set_ or [])
    target = LocalTarget(state, settings)
    for dep in target.deployments():
        dep.check_binaries()
    save_settings(state, settings)
    started = time.monotonic()
    typer.echo(f"starting the stack (state folder {state})...", err=True)
    target.up(lambda service, seconds: typer.echo(f"  {service} ready ({seconds:.1f}s)",
                                                   err=True))
    typer.echo(f"stack ready in {time.monotonic() - started:.1f}s", err=True)
    _print_rows(member_rows(target), fmt)


@app.command()
def down() -> None:
    """Stop every member of the local stack (data is kept)."""
    from drillrunner.stack.local import LocalTarget
    from drillrunner.stack.settings import load_settings

    state = _state()
    if load_settings(state) is None:
        typer.echo("no local stack here", err=True)
        return
    target = LocalTarget(state)
    for dep in reversed(target.deployments()):
        dep.down()
    target.forget_network()
    typer.echo("stack stopped", err=True)


@app.command()
def status(
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.TABLE,
) -> None:
    """Each member's live role (read from the server), address and PID."""
    from drillrunner.stack.local import LocalTarget

    target = LocalTarget(_state())
    _print_rows(member_rows(target), fmt)
    cuts = target.network_cuts()
    if cuts.problem() is None and (active := cuts.active()):
        # On stderr under --format json: stdout stays the list of members scripts parse.
        err = fmt is Format.JSON
        typer.echo("network faults in force (drill recover, or drill stack down, lifts them):",
                   err=err)
        for rule in active:
            typer.echo(f"  {rule}", err=err)

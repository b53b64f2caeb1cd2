"""The `drill` command line. Exceptions become exit codes here, in one place."""

from __future__ import annotations

import sys

import typer

from drillrunner.cli import (
    audit_cmds,
    catalog_cmds,
    claims_cmds,
    cluster_cmds,
    evidence_cmds,
    run_cmds,
    stack_cmds,
)
from drillrunner.core.errors import DrillError, ExitCode, InvalidInput

app = typer.Typer(
    name="drill",
    help=(
        "Chaos and disaster-recovery drills against a real stack (PostgreSQL/TimescaleDB, "
        "Redis...). Runs scenarios that inject real faults, measures recovery from the "
        "client's view, and writes an evidence bundle under reports/<run-id>/.\n\n"
        "Exit codes: 1 if anything failed (a check, the recovery, an undo, or the baseline), "
        "else 130 if interrupted, else 3 if inconclusive or an error, else 0; 2 is invalid "
        "input or usage."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: rendering it with rich costs more than the rest
    pretty_exceptions_show_locals=False,  # locals hold DSNs
    context_settings={"help_option_names": ["-h", "--help"]},
)
catalog_cmds.register(app)
run_cmds.register(app)
evidence_cmds.register(app)
claims_cmds.register(app)
audit_cmds.register(app)
app.add_typer(stack_cmds.app, name="stack")
app.add_typer(cluster_cmds.app, name="cluster")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit code."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="drill", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        print("interrupted", file=sys.stderr)
        code = ExitCode.INTERRUPTED
    except InvalidInput as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        code = exc.exit_code
    except DrillError as exc:
        print(f"drill: {exc}", file=sys.stderr)
        code = exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = ExitCode.INTERRUPTED
    except Exception as exc:
        if not _is_usage_error(exc):
            raise
        exc.show()  # type: ignore[attr-defined]
        code = ExitCode.USAGE
    if argv is None:
        sys.exit(int(code))
    return int(code)


def _is_usage_error(exc: Exception) -> bool:
    """Typer's own bad-usage errors (its click is vendored, so match by behaviour)."""
    return callable(getattr(exc, "show", None)) and getattr(exc, "exit_code", None) == 2

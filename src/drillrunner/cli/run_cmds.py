"""drill run and drill report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from drillrunner.errors import ExitCode, StackError, UsageError

OUTCOME_EXIT = {
    "passed": ExitCode.PASSED,
    "failed": ExitCode.FAILED,
    "baseline-not-met": ExitCode.FAILED,
    "aborted": ExitCode.FAILED,
    "inconclusive": ExitCode.INCONCLUSIVE,
    "error": ExitCode.INCONCLUSIVE,
    "interrupted": ExitCode.INTERRUPTED,
}


def _git_commit(root: Path) -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _environment(target: Any, root: Path) -> dict[str, Any]:
    from drillrunner import __version__

    env: dict[str, Any] = {"drill_version": __version__, "git_commit": _git_commit(root)}
    env.update(target.describe())
    for dep in target.deployments():
        try:
            env.update({f"{k}_version": v for k, v in dep.versions().items()})
        except Exception as exc:
            env[f"{dep.service}_version"] = f"unknown ({type(exc).__name__})"
    return env


def _preflight(target: Any) -> None:
    """Every standing member must be running before anything is injected."""
    down = [m.name for dep in target.deployments() for m in dep.members()
            if not target.is_running(m)]
    if down:
        up = "drill cluster up" if target.name == "kind" else "drill stack up"
        raise StackError(f"stack members not running: {', '.join(down)}; run '{up}'")


def _check_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: cannot write there (permission denied)")


def _bundle_dir(out: Path, run_id: str) -> Path:
    bundle = out / run_id
    try:
        bundle.mkdir(parents=True, exist_ok=False)
        probe = bundle / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    return bundle


def _audit_events(root: Path, paths: list[str] | None, skip: bool) -> list[dict[str, Any]]:
    """`audit-rule` events of the static audit (`drill audit`) for the run's journal."""
    default = root / "deploy" / "k8s"
    if skip or (not paths and not default.is_dir()):
        return []
    from drillrunner.audit import audit_paths, journal_events

    return journal_events(audit_paths(paths or [str(default)])[1])


def _recover_command(target: str, context: str | None) -> str:
    if target == "local":
        return "drill recover"
    return f"drill recover --target {target}" + (f" --context {context}" if context else "")


TargetOpt = Annotated[str, typer.Option(help="Where the stack runs: local or kind.")]
ContextOpt = Annotated[str | None, typer.Option(
    help="Kube context for --target kind (default: the kubeconfig's current one; must "
    "match $DRILL_KUBE_CONTEXTS, default kind-*).")]


def run(
    refs: Annotated[list[str], typer.Argument(
        help="Scenario or drill names (see 'drill list') or paths to their files.",
        metavar="NAME_OR_PATH...")],
    target: TargetOpt = "local",
    context: ContextOpt = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for evidence bundles (default: reports/ in the project).")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Validate, check preflight and steady state; inject nothing.")] = False,
    audit: Annotated[list[str] | None, typer.Option(
        "--audit", metavar="PATH", help="Manifests whose static audit feeds the claim "
        "matrix (repeatable; default: deploy/k8s of the project when it exists).")] = None,
    no_audit: Annotated[bool, typer.Option("--no-audit", help="Skip the static audit.")] = False,
) -> None:
    """Run scenarios or drills and write an evidence bundle under reports/<run-id>/."""
    import secrets
    from datetime import UTC, datetime

    from drillrunner.cli.display import Display
    from drillrunner.engine.actions import Catalog
    from drillrunner.engine.journal import Journal
    from drillrunner.engine.lock import TargetLock
    from drillrunner.engine.runner import Runner
    from drillrunner.engine.verdicts import Outcome
    from drillrunner.model.library import Library
    from drillrunner.paths import project_root
    from drillrunner.report.bundle import render_bundle

    root = project_root()
    catalog = Catalog.load()
    docs = Library(root).resolve(refs, catalog)
    audits = _audit_events(root, audit, no_audit)  # before the lock: unreadable input exits 2
    from drillrunner.targets.kind.select import open_target

    tgt = open_target(target, context)  # kind: refuses a context off the allow-list first
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
    reports = out or root / "reports"
    _check_out(reports)  # before the lock and the stack: a bad --out is a usage error
    lock = TargetLock(tgt.state, run_id, reports / run_id / "journal.jsonl",
                      recover=_recover_command(target, context))
    lock.acquire()
    try:
        _preflight(tgt)
        bundle = _bundle_dir(reports, run_id)
    except BaseException:
        lock.release()
        raise
    journal = Journal(bundle / "journal.jsonl")
    outcomes: list[Outcome] = []
    try:
        registry = Library(root).registry()
        journal.append("run-start", run_id=run_id, target=tgt.name, pid=os.getpid(),
                       scenarios=[d.path.stem for d in docs], dry_run=dry_run,
                       environment=_environment(tgt, root),
                       claims_registry=[c.model_dump() for c in registry.claims]
                       if registry else [])
        for event in audits:
            journal.append("audit-rule", **event)
        with Display() as display:
            runner = Runner(tgt, catalog, journal, display, dry_run=dry_run)
            with runner.signals():
                for doc in docs:
                    outcomes.append(runner.run_scenario(doc).outcome)
                    if runner.interrupted:
                        break
        outcome = Outcome.worst(outcomes)
        journal.append("run-end", run_id=run_id, outcome=outcome.value)
    finally:
        journal.close()
        lock.release()
    from drillrunner.report.artifacts import collect

    collect(tgt, bundle)
    view = render_bundle(bundle)
    _print_summary(view, bundle)
    raise typer.Exit(int(OUTCOME_EXIT[view.outcome]))


def _print_summary(view: Any, bundle: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("scenario", "outcome", "RTO", "acked writes", "lost", title=view.run_id)
    for s in view.scenarios:
        m = s.measurements
        rto = (f"{m['rto_seconds']:.3f}s ± {m.get('rto_error_seconds') or 0:.3f}s"
               if m.get("rto_seconds") is not None else "n/a")
        table.add_row(s.name, s.outcome, rto, str(m.get("acknowledged_writes", "n/a")),
                      str(m.get("lost_acknowledged_writes", "n/a")))
    console = Console()
    console.print(table)
    for s in view.scenarios:
        if s.outcome != "passed":
            console.print(f"{s.name}: {s.outcome}: {s.reason}", highlight=False)
    console.print(f"outcome: [bold]{view.outcome}[/]")
    console.print(f"evidence bundle: {bundle}")


def report(bundle: Annotated[Path, typer.Argument(help="An evidence bundle folder.")]) -> None:
    """Re-render every report of a bundle from its journal alone."""
    from drillrunner.report.bundle import render_bundle

    if not (bundle / "journal.jsonl").is_file():
        raise UsageError(f"{bundle}: no journal.jsonl (not an evidence bundle)")
    render_bundle(bundle)
    typer.echo(f"re-rendered {bundle}")


def verify(bundle: Annotated[Path, typer.Argument(help="An evidence bundle folder.")]) -> None:
    """Check a bundle against its MANIFEST.sha256 and its journal's hash chain.

    Exit 0 when intact, 1 when any file was changed, removed or added.
    """
    from drillrunner.report.manifest import verify as verify_bundle

    if not bundle.is_dir():
        raise UsageError(f"{bundle}: no such folder")
    problems = verify_bundle(bundle)
    for p in problems:
        typer.echo(p)
    if problems:
        typer.echo(f"{bundle}: NOT intact ({len(problems)} problem(s))")
        raise typer.Exit(int(ExitCode.FAILED))
    typer.echo(f"{bundle}: intact")


def claims(
    bundle: Annotated[Path | None, typer.Argument(
        help="Bundle whose verdicts to show (default: the newest under reports/).")] = None,
) -> None:
    """The claim matrix: each claim of the review, what tests it, and its last verdict."""
    from rich.console import Console
    from rich.table import Table

    from drillrunner.model.library import Library
    from drillrunner.model.loader import load
    from drillrunner.model.scenario import Scenario
    from drillrunner.paths import project_root
    from drillrunner.report.claims import claim_rows
    from drillrunner.report.view import load_run

    root = project_root()
    lib = Library(root)
    registry = lib.registry()
    if registry is None:
        raise UsageError("drills/claims.yaml is missing or invalid: run 'drill validate'")
    tests: dict[str, list[str]] = {c.id: [] for c in registry.claims}
    for path in lib.files():
        doc, _ = load(path)
        if doc is not None and isinstance(doc.model, Scenario):
            for cited in doc.model.metadata.claims:
                tests.setdefault(cited, []).append(doc.model.metadata.name)
    from drillrunner.audit import all_rules

    for audit_rule in all_rules():  # static audit rules test claims too
        for cited in audit_rule.claims:
            tests.setdefault(cited, []).append(f"audit:{audit_rule.name}")
    if bundle is None:
        found = sorted((root / "reports").glob("*/journal.jsonl"))
        bundle = found[-1].parent if found else None
    verdicts = {}
    if bundle is not None and not (bundle / "journal.jsonl").is_file():
        raise UsageError(f"{bundle}: no journal.jsonl (not an evidence bundle)")
    if bundle is not None:
        verdicts = {r.id: (r.verdict.value, r.why) for r in claim_rows(load_run(bundle))}
    table = Table("claim", "tested by", "last verdict", "why",
                  title=f"claims (verdicts from {bundle or 'no run yet'})")
    for claim in registry.claims:
        verdict, why = verdicts.get(claim.id, ("UNKNOWN", "not run"))
        if not tests[claim.id]:
            verdict, why = "UNKNOWN", "untested: no scenario or audit rule cites it"
        table.add_row(claim.id, ", ".join(tests[claim.id]) or "untested", verdict, why)
    Console().print(table)


def recover(target: TargetOpt = "local", context: ContextOpt = None) -> None:
    """Undo the faults of a drill that died (kill -9, power loss) and clear its lock.

    Reads the dead run's journal, replays every undo that was not completed, newest first,
    and journals what it did. Safe to run again: completed undos are not repeated. Give the
    same --target (and --context) the drill ran with.
    """
    from drillrunner.engine.actions import Catalog
    from drillrunner.engine.lock import TargetLock, pid_alive
    from drillrunner.engine.recover import replay
    from drillrunner.paths import state_dir
    from drillrunner.targets.kind.select import open_target

    # local: look for the lock before opening the target (which needs a set-up stack)
    state: Path = state_dir() if target == "local" and not context else \
        open_target(target, context).state  # kind: the allow-list is checked first
    held = TargetLock.holder(state)
    if held is None:
        typer.echo(f"nothing to recover: no drill left a lock on target {target}")
        return
    tgt = open_target(target, context)
    pid = int(str(held.get("pid", 0)) or 0)
    if pid and pid_alive(pid):
        raise StackError(f"the drill holding the lock (pid {pid}) is still running")
    journal = Path(str(held.get("journal", "")))
    results = replay(journal, tgt, Catalog.load()) if journal.is_file() else []
    for undo, status in results:
        typer.echo(f"{undo.scenario}: {undo.action} {undo.args}: {status}")
    if any(status.startswith("failed") for _, status in results):
        raise StackError("some undos failed; see above, fix the stack and run 'drill recover' "
                         "again")
    (state / "drill.lock").unlink(missing_ok=True)
    typer.echo(f"recovered run {held.get('run_id')}: {len(results)} undo(s) replayed; "
               "lock cleared")


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(report)
    app.command()(verify)
    app.command()(claims)
    app.command()(recover)

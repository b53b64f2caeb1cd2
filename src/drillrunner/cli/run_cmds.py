"""drill run and drill report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from drillrunner.core.errors import StackError, UsageError
from drillrunner.evidence.events import Event
from drillrunner.services.registry import full_catalog


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


def _audit_events(root: Path, paths: list[str] | None, skip: bool
                  ) -> tuple[list[str], list[dict[str, Any]]]:
    """The manifests the static audit (`drill audit`) read, and its `audit-rule` events."""
    default = root / "deploy" / "k8s"
    if skip or (not paths and not default.is_dir()):
        return [], []
    from drillrunner.audit import audit_paths, journal_events

    read = paths or [str(default)]
    shown = [_relative(Path(p), root) for p in read]
    return shown, journal_events(audit_paths(read)[1])


def _audit_citations() -> dict[str, list[str]]:
    from drillrunner.audit import citations

    return citations()


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


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
    sign_key: Annotated[Path | None, typer.Option(
        "--sign-key", metavar="FILE", help="Ed25519 private key that signs the bundle (a "
        "team key; default: $DRILL_SIGNING_KEY, else one created on first use under "
        "~/.config/drillrunner/).")] = None,
    no_sign: Annotated[bool, typer.Option(
        "--no-sign", help="Do not sign the bundle: drill verify can then only check its "
        "integrity, not who made it.")] = False,
) -> None:
    """Run scenarios or drills and write a signed evidence bundle under reports/<run-id>/.

    Exit code: 1 if any scenario failed (a check failed, it never recovered within its
    timeout, an undo failed, or its baseline was not met), else 130 if interrupted, else 3
    if any was inconclusive or hit an error, else 0."""
    import secrets
    from datetime import UTC, datetime

    from drillrunner.cli.display import Display
    from drillrunner.core.paths import project_root
    from drillrunner.core.verdicts import Outcome
    from drillrunner.engine.lock import TargetLock
    from drillrunner.engine.outcome import EXIT, run_outcome
    from drillrunner.engine.runner import Runner
    from drillrunner.evidence.journal import Journal
    from drillrunner.model.library import Library
    from drillrunner.report.bundle import render_bundle

    root = project_root()
    catalog = full_catalog()
    docs = Library(root).resolve(refs, catalog)
    manifests, audits = _audit_events(root, audit, no_audit)  # unreadable input exits 2
    signer = None if no_sign else _signer(sign_key)  # before the lock: a bad key exits 2
    from drillrunner.stack.select import open_target

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
    pending = False
    try:
        lib = Library(root)
        registry = lib.registry()
        journal.append(Event.RUN_START, run_id=run_id, target=tgt.name, pid=os.getpid(),
                       scenarios=[d.path.stem for d in docs], dry_run=dry_run,
                       environment=_environment(tgt, root),
                       claims_registry=[c.model_dump() for c in registry.claims]
                       if registry else [],
                       claim_citations=lib.claim_citations(), audit_manifests=manifests,
                       audit_citations=_audit_citations(),
                       signing=None if signer is None else {
                           "algorithm": "ed25519", "fingerprint": signer.fingerprint,
                           "public_key": signer.public_key_b64})
        for event in audits:
            journal.append(Event.AUDIT_RULE, **event)
        with Display() as display:
            runner = Runner(tgt, catalog, journal, display, dry_run=dry_run)
            with runner.signals():
                for doc in docs:
                    outcomes.append(runner.run_scenario(doc).outcome)
                    if runner.interrupted or runner.undo_pending:
                        break
            pending = runner.undo_pending
        skipped = [d.path.stem for d in docs[len(outcomes):]]
        if skipped:
            journal.append(Event.SCENARIOS_SKIPPED, scenarios=skipped,
                           reason="an undo failed" if pending else "interrupted")
        outcome = run_outcome(outcomes, runner.interrupted)
        journal.append(Event.RUN_END, run_id=run_id, outcome=outcome.value,
                       exit_code=int(EXIT[outcome]), undo_pending=pending)
    finally:
        journal.close()
        if pending:  # a failed undo keeps the lock until drill recover replays it
            lock.keep("an undo failed")
        else:
            lock.release()
    from drillrunner.report.artifacts import collect

    collect(tgt, bundle)
    view = render_bundle(bundle, signer=signer)
    _print_summary(view, bundle)
    if pending:
        typer.echo(f"an undo failed and is still pending: run '{lock.recover}' before the "
                   "next drill (the lock stays until then)", err=True)
    raise typer.Exit(int(EXIT[Outcome(view.outcome)]))


def _signer(key: Path | None) -> Any:
    from drillrunner.evidence.signing import load_or_create_key

    return load_or_create_key(key)


def _print_summary(view: Any, bundle: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from drillrunner.report.view import lost_text, rto_text

    table = Table("scenario", "outcome", "RTO", "acked writes", "lost", title=view.run_id)
    for s in view.scenarios:
        m = s.measurements
        table.add_row(s.name, s.outcome, rto_text(m), str(m.get("acknowledged_writes", "n/a")),
                      lost_text(m))
    console = Console()
    console.print(table)
    for s in view.scenarios:
        if s.outcome != "passed":
            console.print(f"{s.name}: {s.outcome}: {s.reason}", highlight=False)
    console.print(f"outcome: [bold]{view.outcome}[/]")
    console.print(f"evidence bundle: {bundle}")


def recover(
    target: TargetOpt = "local",
    context: ContextOpt = None,
    sign_key: Annotated[Path | None, typer.Option(
        "--sign-key", metavar="FILE", help="The key the run was signed with, when it was "
        "not the local one: the bundle is signed again after the replay.")] = None,
) -> None:
    """Undo the faults of a drill that died (kill -9, power loss) or whose undo failed, and
    clear its lock.

    Reads the run's journal, replays every undo and rollback that was not completed, newest
    first, and journals what it did; then renders the run's bundle again and signs it with
    the key its journal names. Safe to run again: completed undos are not repeated. Give the
    same --target (and --context) the drill ran with.
    """
    from drillrunner.core.paths import state_dir
    from drillrunner.engine.lock import TargetLock, pid_alive
    from drillrunner.engine.recover import replay
    from drillrunner.stack.select import open_target

    # local: look for the lock before opening the target (which needs a set-up stack)
    state: Path = state_dir() if target == "local" and not context else \
        open_target(target, context).state  # kind: the allow-list is checked first
    held = TargetLock.holder(state)
    if held is None:
        typer.echo(f"nothing to recover: no drill left a lock on target {target}")
        return
    tgt = open_target(target, context)
    pid = int(str(held.get("pid", 0)) or 0)
    if pid and pid_alive(pid) and not held.get("ended"):
        raise StackError(f"the drill holding the lock (pid {pid}) is still running")
    journal = Path(str(held.get("journal", "")))
    results = replay(journal, tgt, full_catalog()) if journal.is_file() else []
    for undo, status in results:
        typer.echo(f"{undo.scenario}: {undo.action} {undo.args}: {status}")
    if journal.is_file():
        _reseal(journal.parent, sign_key)
    if any(status.startswith("failed") for _, status in results):
        raise StackError("some undos failed; see above, fix the stack and run 'drill recover' "
                         "again")
    (state / "drill.lock").unlink(missing_ok=True)
    typer.echo(f"recovered run {held.get('run_id')}: {len(results)} undo(s) replayed; "
               "lock cleared")


def _reseal(bundle: Path, sign_key: Path | None) -> None:
    """The replay appended to the run's journal: render its bundle again and sign it with
    the key the journal names, so `drill verify` holds for the journal as it now is."""
    from drillrunner.evidence.journal import read
    from drillrunner.evidence.keys import SigningKeyError
    from drillrunner.report.bundle import render_bundle

    start = next((e for e in read(bundle / "journal.jsonl") if e["event"] == Event.RUN_START), {})
    named = start.get("signing")
    signer = None
    if named:
        try:
            signer = _signer(sign_key)
        except SigningKeyError as exc:
            typer.echo(f"{bundle}: not signed again ({exc})", err=True)
        if signer is not None and signer.fingerprint != named.get("fingerprint"):
            typer.echo(f"{bundle}: not signed again: it was signed with "
                       f"{named.get('fingerprint')}; give that key with --sign-key", err=True)
            signer = None
    render_bundle(bundle, signer)
    typer.echo(f"bundle {bundle} rendered again" + (" and signed" if signer else ""))


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(recover)

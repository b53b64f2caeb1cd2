"""drill verify, drill report and drill key: checking evidence, and the key that signs it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from drillrunner.core.errors import ExitCode, UsageError

BundleArg = Annotated[Path, typer.Argument(help="An evidence bundle folder.")]


def verify(
    bundle: BundleArg,
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", metavar="FILE", help="The signer's public key (base64 of the raw key "
        "as 'drill key --format base64' prints it, PEM, or an 'ssh-ed25519' line). Default: "
        "the public part of the local signing key. Given, an unsigned bundle is NOT intact.")
    ] = None,
) -> None:
    """Check a bundle: its manifest, its journal's hash chain, and the signature over both.

    Exit 0 when intact (signed by the expected key, or made with --no-sign and no
    --public-key given), 1 when anything was changed, removed, added, re-chained or signed
    by another key, 2 when the path is no bundle.
    """
    from drillrunner.evidence.signing import Integrity, verify_bundle

    if not bundle.is_dir():
        raise UsageError(f"{bundle}: no such folder")
    result = verify_bundle(bundle, public_key)
    for problem in result.problems:
        typer.echo(problem)
    if result.status is Integrity.NOT_INTACT:
        typer.echo(f"{bundle}: NOT intact ({len(result.problems)} problem(s))")
        raise typer.Exit(int(ExitCode.FAILED))
    if result.status is Integrity.UNSIGNED:
        typer.echo(f"{bundle}: {result.status.value}")
        return
    typer.echo(f"{bundle}: intact, signed by {result.fingerprint} (run {result.run_id})")


def report(
    bundle: BundleArg,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="DIR", help="Write the re-rendered reports into DIR instead.")] = None,
    finish: Annotated[bool, typer.Option(
        "--finish", help="Finish a bundle whose run died before writing its reports (no "
        "manifest, no SIGNATURE): render it, write its manifest and sign it with the key "
        "its journal names.")] = False,
    sign_key: Annotated[Path | None, typer.Option(
        "--sign-key", metavar="FILE", help="With --finish: the private key the run signed "
        "with, when it is not the local key.")] = None,
) -> None:
    """Re-render every report of a bundle from its journal alone.

    A signed bundle is never changed: without --out, its reports are rendered aside and
    compared byte for byte with the bundle's (exit 0 when all match, 1 when any differs),
    which shows they derive from the journal. An unsigned bundle is re-rendered in place
    and its manifest rewritten.
    """
    from drillrunner.evidence.manifest import JOURNAL
    from drillrunner.evidence.signing import is_signed
    from drillrunner.report.bundle import render_bundle, render_reports
    from drillrunner.report.view import load_run

    if not (bundle / JOURNAL).is_file():
        raise UsageError(f"{bundle}: no {JOURNAL} (not an evidence bundle)")
    if finish:
        _finish(bundle, sign_key)
        return
    signed = is_signed(bundle)
    if out is not None and not (signed and out.resolve() == bundle.resolve()):
        out.mkdir(parents=True, exist_ok=True)
        for path in render_reports(load_run(bundle), out):
            typer.echo(f"wrote {path}")
        return
    if out is not None:
        raise UsageError(f"--out {out}: that is the signed bundle itself; a signed bundle "
                         "is never rewritten")
    if not signed:
        render_bundle(bundle)
        typer.echo(f"re-rendered {bundle} (unsigned: reports and manifest rewritten)")
        return
    if not _compare(bundle):
        typer.echo(f"{bundle}: some reports differ from a rendering of the journal")
        if _unfinished(bundle):
            typer.echo("its run did not finish (no manifest, no SIGNATURE): 'drill report "
                       "--finish' renders and signs it")
        raise typer.Exit(int(ExitCode.FAILED))
    typer.echo(f"{bundle}: every report matches a rendering of the journal")


def _unfinished(bundle: Path) -> bool:
    from drillrunner.evidence.manifest import NAME, SIGNATURE

    return not (bundle / NAME).exists() and not (bundle / SIGNATURE).exists()


def _finish(bundle: Path, sign_key: Path | None) -> None:
    """Signing vouches for the bundle: only a never-finished one, only explicitly, only
    with the key its journal names."""
    from drillrunner.evidence.keys import load_or_create_key, local_signer
    from drillrunner.evidence.manifest import JOURNAL
    from drillrunner.evidence.signing import declared, run_start
    from drillrunner.report.bundle import render_bundle

    if not _unfinished(bundle):
        raise UsageError(f"{bundle}: already finished (it has a manifest or a SIGNATURE); "
                         "a finished bundle is never rewritten")
    start = run_start(bundle / JOURNAL)
    try:
        said = declared(start) if start is not None else None
    except ValueError as exc:
        raise UsageError(f"{bundle}: {exc}") from None
    signer = None
    if said is not None:
        signer = load_or_create_key(sign_key) if sign_key else local_signer()
        if signer is None or signer.public_key_b64 != said.public_key:
            raise UsageError(f"{bundle}: its run was signed by {said.fingerprint}: give that "
                             "private key with --sign-key FILE")
    render_bundle(bundle, signer)
    how = f"signed by {signer.fingerprint}" if signer else "unsigned"
    typer.echo(f"finished {bundle}: reports and manifest written, {how}")


def _compare(bundle: Path) -> bool:
    """Renders the journal into a temporary folder and compares each report with the
    bundle's copy, byte for byte."""
    import tempfile

    from drillrunner.report.bundle import render_reports
    from drillrunner.report.view import load_run

    same = True
    with tempfile.TemporaryDirectory(prefix="drill-report-") as tmp:
        for fresh in render_reports(load_run(bundle), Path(tmp)):
            kept = bundle / fresh.name
            if not kept.is_file():
                verdict, same = "missing from the bundle", False
            elif kept.read_bytes() != fresh.read_bytes():
                verdict, same = "DIFFERS", False
            else:
                verdict = "matches"
            typer.echo(f"{fresh.name}: {verdict}")
    return same


class KeyFormat(StrEnum):
    TEXT = "text"
    BASE64 = "base64"
    PEM = "pem"


def key(
    fmt: Annotated[KeyFormat, typer.Option(
        "--format", help="text: path, fingerprint and public key; base64 or pem: the public "
        "key alone, as a file for 'drill verify --public-key'.")] = KeyFormat.TEXT,
    key_file: Annotated[Path | None, typer.Option(
        "--key", metavar="FILE", help="A team private key to show instead (only read).")
    ] = None,
) -> None:
    """Show the key that signs evidence bundles, and its public part for auditors.

    The key is created on first use (mode 0600) at $DRILL_SIGNING_KEY, else
    $XDG_CONFIG_HOME/drillrunner/signing-key (~/.config when unset). Give its public key
    ('drill key --format base64 > drill.pub') to whoever verifies your bundles.
    """
    from drillrunner.evidence.keys import load_or_create_key

    signer = load_or_create_key(key_file)
    if fmt is KeyFormat.BASE64:
        typer.echo(signer.public_key_b64)
    elif fmt is KeyFormat.PEM:
        typer.echo(signer.public_pem(), nl=False)
    else:
        typer.echo(f"signing key: {signer.path}\nfingerprint: {signer.fingerprint}\n"
                   f"public key:  {signer.public_key_b64}")


def register(app: typer.Typer) -> None:
    app.command()(report)
    app.command()(verify)
    app.command()(key)

"""Writes every report of a bundle from its journal, then the manifest over all files, then
(unless the run was made with --no-sign) the signature over the manifest and the journal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from drillrunner.evidence.manifest import JOURNAL, write_manifest
from drillrunner.report.html import write_html
from drillrunner.report.junit import write_junit
from drillrunner.report.markdown import write_markdown
from drillrunner.report.summary import write_summary
from drillrunner.report.view import RunView, load_run

if TYPE_CHECKING:
    from drillrunner.evidence.keys import Signer


def render_reports(run: RunView, out: Path) -> list[Path]:
    """Every report of `run`, written into `out` (the bundle, or a folder beside it).
    Rendering is a pure function of the journal: `drill report` compares the bytes."""
    return [write_summary(run, out), write_markdown(run, out), write_html(run, out),
            write_junit(run, out)]


def render_bundle(bundle: Path, signer: Signer | None = None) -> RunView:
    """Reports, manifest and, given a signer, SIGNATURE. The signer must be the key the
    journal's run-start names (ValueError otherwise, before anything is written). Without
    one, a run whose journal names a key is left unsigned: `drill verify` says NOT intact."""
    if signer is not None:
        from drillrunner.evidence.signing import check_signer

        check_signer(bundle / JOURNAL, signer)
    run = load_run(bundle)
    render_reports(run, bundle)
    write_manifest(bundle)
    if signer is not None:
        from drillrunner.evidence.signing import sign_bundle

        sign_bundle(bundle, signer, run.run_id)
    return run

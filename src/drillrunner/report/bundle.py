"""Writes every report of a bundle from its journal, then the manifest over all files."""

from __future__ import annotations

from pathlib import Path

from drillrunner.report.html import write_html
from drillrunner.report.junit import write_junit
from drillrunner.report.manifest import write_manifest
from drillrunner.report.markdown import write_markdown
from drillrunner.report.summary import write_summary
from drillrunner.report.view import RunView, load_run


def render_bundle(bundle: Path) -> RunView:
    run = load_run(bundle)
    write_summary(run, bundle)
    write_markdown(run, bundle)
    write_html(run, bundle)
    write_junit(run, bundle)
    write_manifest(bundle)
    return run

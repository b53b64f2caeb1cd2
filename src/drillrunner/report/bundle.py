"""Writes every report of a bundle from its journal."""

from __future__ import annotations

from pathlib import Path

from drillrunner.report.markdown import write_markdown
from drillrunner.report.summary import write_summary
from drillrunner.report.view import RunView, load_run


def render_bundle(bundle: Path) -> RunView:
    run = load_run(bundle)
    write_summary(run, bundle)
    write_markdown(run, bundle)
    return run

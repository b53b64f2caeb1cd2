"""Where drill finds scenarios and keeps its state."""

from __future__ import annotations

import os
from pathlib import Path


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` holding `scenarios/` or `drills/`."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "scenarios").is_dir() or (folder / "drills").is_dir():
            return folder
    return here


def state_dir() -> Path:
    """The local stack's state folder: $DRILL_STATE_DIR, else `.drill/` in the project."""
    env = os.environ.get("DRILL_STATE_DIR")
    return Path(env).resolve() if env else project_root() / ".drill"

"""Where drill finds scenarios and keeps its state."""

from __future__ import annotations

import hashlib
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
    """The local stack's state folder: $DRILL_STATE_DIR, else `.drill/` in the project when
    other users can reach it (PostgreSQL runs as its own user and must), else a folder under
    /var/tmp named after the project (a clone under a private folder such as /root)."""
    env = os.environ.get("DRILL_STATE_DIR")
    if env:
        return Path(env).resolve()
    root = project_root()
    if all(os.stat(p).st_mode & 0o001 for p in (root, *root.parents)):
        return root / ".drill"
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return Path("/var/tmp") / f"drillrunner-{root.name}-{digest}"

"""Which Patroni the local stack runs, and how `make deps` installs it.

Patroni comes from PyPI, pinned, in a virtualenv of its own: Debian bookworm's 3.0.2 lets a
leader that was frozen past its lock's ttl overwrite the new leader's key in etcd when it
thaws (it refreshes an expired lease and puts the key unconditionally), so two members
take writes and the thawed one wins: acknowledged writes are lost. The
`timescaledb-primary-freeze` drill catches it; Patroni 3.0.3 made that put a compare-and-
swap. The virtualenv lives outside the checkout (`/opt/drillrunner`, readable by every
user) because Patroni runs as the postgres user, who cannot enter root's folders.

`python -m drillrunner.services.timescaledb.patroni_install` installs it (idempotent); the
setting `timescaledb.patroni` names another patroni executable to drill that one instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from drillrunner.core.errors import MissingBinary

PATRONI_VERSION = "4.1.5"
REQUIREMENT = f"patroni[etcd3,psycopg3]=={PATRONI_VERSION}"


def home() -> Path:
    env = os.environ.get("DRILL_PATRONI_HOME")
    return Path(env) if env else Path("/opt/drillrunner") / f"patroni-{PATRONI_VERSION}"


def patroni_binary(chosen: str = "") -> str:
    """The patroni executable: `chosen` (the stack's setting), else the pinned one."""
    if chosen:
        if not os.access(chosen, os.X_OK):
            raise MissingBinary(f"timescaledb.patroni={chosen} is not an executable file")
        return chosen
    path = home() / "bin" / "patroni"
    if not os.access(path, os.X_OK):
        raise MissingBinary(
            f"Patroni {PATRONI_VERSION} not found at {path}: run 'make deps' (it installs "
            f"{REQUIREMENT} from PyPI into {home()})")
    return str(path)


def install() -> Path:
    """Create the virtualenv and install the pinned Patroni, unless it is there already."""
    target = home()
    marker = target / ".installed"
    if marker.exists() and marker.read_text().strip() == REQUIREMENT:
        return target
    # A half-built one (no marker) is rebuilt: the marker is written last.
    shutil.rmtree(target, ignore_errors=True)
    # The system's Python: the postgres user must be able to run it (a pyenv under root's
    # home would not do).
    python = "/usr/bin/python3"
    subprocess.run([python, "-m", "venv", str(target)], check=True)
    subprocess.run([str(target / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                    REQUIREMENT], check=True)
    for root, dirs, files in os.walk(target):
        for name in dirs + files:
            p = Path(root) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | 0o444 | (0o111 if p.is_dir() else 0))
    target.parent.chmod(0o755)
    marker.write_text(REQUIREMENT + "\n")
    return target


if __name__ == "__main__":
    print(f"Patroni {PATRONI_VERSION}: {install()}")

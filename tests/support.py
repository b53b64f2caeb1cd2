"""Helpers shared by the test tiers.

A test that needs a real server, a client library or a built binary FAILS when it is
missing: a green `make test` must mean the servers were exercised. Only an explicit opt-out,
DRILL_TEST_SKIP_SERVERS=1, turns those failures into skips (a laptop without the servers).
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

SKIP_SERVERS_VAR = "DRILL_TEST_SKIP_SERVERS"


def skip_servers() -> bool:
    """True only when the opt-out is set, read at call time (tests may change it)."""
    return os.environ.get(SKIP_SERVERS_VAR, "") == "1"


def missing(what: str) -> NoReturn:
    """A required server or library is missing: fail, or skip under the opt-out."""
    if skip_servers():
        pytest.skip(f"{what} ({SKIP_SERVERS_VAR}=1)")
    pytest.fail(f"{what}; set {SKIP_SERVERS_VAR}=1 to skip the tests that need it",
                pytrace=False)


def need_module(name: str, *, install: str) -> object:
    """Import a client library; a missing one fails the test (see `missing`)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"missing Python module {name}: {install}")


def need_binaries(*names: str, install: str) -> None:
    """Every server binary must be installed; a missing one fails the test (see `missing`)."""
    absent = [n for n in names if shutil.which(n) is None and not os.path.exists(n)]
    if absent:
        missing(f"missing {', '.join(absent)}: install {install}")

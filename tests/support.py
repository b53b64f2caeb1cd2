"""Helpers shared by the test tiers."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_module(name: str, *, install: str) -> object:
    """Import a client library; skip when missing, but FAIL under CI=true."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        msg = f"missing Python module {name}: {install}"
        if IN_CI:
            pytest.fail(msg + " (CI=true: a missing dependency is a failure)")
        pytest.skip(msg)


def need_binaries(*names: str, install: str) -> None:
    """Skip when a server binary is missing, but FAIL under CI=true: CI must install it."""
    missing = [n for n in names if shutil.which(n) is None and not os.path.exists(n)]
    if not missing:
        return
    msg = f"missing {', '.join(missing)}: install {install}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: a missing server is a failure)")
    pytest.skip(msg)

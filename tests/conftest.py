"""Fixtures for every test tier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Runs sign their bundles: with a key of the test session's, never the user's own
    (~/.config/drillrunner/signing-key)."""
    path = tmp_path_factory.mktemp("signing") / "signing-key"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRILL_SIGNING_KEY", str(path))
        yield path

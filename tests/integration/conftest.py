"""A whole local stack for the drill-level tests, in its own state folder and ports."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from drillrunner.cli import main
from tests.support import need_binaries

ROOT = Path(__file__).resolve().parents[2]
PORT_BASE = 17100  # away from the default stack (17000) a developer may have running


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the whole stack run last, so it is up once and not beside the per-service
    stacks of the other integration tests (two cores)."""
    items.sort(key=lambda item: "drill_stack" in getattr(item, "fixturenames", ()))


@contextmanager
def local_stack(port_base: int, prefix: str) -> Iterator[Path]:
    """`drill stack up --reset` in a fresh state folder on `port_base`, with
    DRILL_STATE_DIR pointing at it; always `drill stack down` at the end."""
    need_binaries("redis-server", "redis-sentinel", install="redis-server redis-sentinel")
    need_binaries("/usr/lib/postgresql/15/bin/postgres", install="postgresql-15")
    need_binaries("java", install="openjdk-17-jre-headless")
    state = Path(tempfile.mkdtemp(prefix=prefix))
    state.chmod(0o755)  # PostgreSQL runs as the postgres user and must reach its data
    old = os.environ.get("DRILL_STATE_DIR")
    os.environ["DRILL_STATE_DIR"] = str(state)
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        assert main(["stack", "up", "--port-base", str(port_base), "--reset"]) == 0
        yield state
    finally:
        main(["stack", "down"])
        shutil.rmtree(state, ignore_errors=True)
        os.chdir(cwd)
        if old is None:
            os.environ.pop("DRILL_STATE_DIR", None)
        else:
            os.environ["DRILL_STATE_DIR"] = old


@pytest.fixture(scope="session")
def drill_stack() -> Iterator[Path]:
    """The whole stack for the drill-level tests, up once for the session."""
    with local_stack(PORT_BASE, "drill-it-") as state:
        yield state


def run_drill(out: Path, *refs: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main(["run", *refs, "--out", str(out)])
    bundles = sorted(out.glob("*/summary.json"))
    assert bundles, "no evidence bundle written"
    return code, json.loads(bundles[-1].read_text())

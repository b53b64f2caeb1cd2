"""The registry is the one list of services: a new service is its folder plus one line.

The demo service (tests/unit/demo_service) is added to a registry of its own; the catalog,
ports, start order, settings and the local target all take it from there, and its member
runs as a real process that its fault really kills."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from drillrunner.core.actions import ActionKind, Catalog
from drillrunner.core.errors import UsageError
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
from drillrunner.services.registry import REGISTRY, Registry, full_catalog
from drillrunner.services.spec import ServiceSpec
from drillrunner.stack.local import LocalTarget
from drillrunner.stack.settings import settings_model
from tests.unit.demo_service.spec import SPEC as ECHO
from tests.unit.demo_service.spec import EchoSettings

SRC = Path(__file__).resolve().parents[2] / "src" / "drillrunner"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_every_service_folder_is_registered_and_lists_its_action_modules() -> None:
    folders = {p.parent.name for p in (SRC / "services").glob("*/spec.py")}
    assert folders == set(REGISTRY.names())
    for spec in REGISTRY.services:
        marked = {p.stem for p in (SRC / "services" / spec.name).glob("*.py")
                  if any(line.startswith(("@probe(", "@fault(", "@workload(", "@check(",
                                          "@action(")) for line in p.read_text().splitlines())}
        assert marked == set(spec.actions), spec.name


def test_no_module_outside_the_registry_names_every_service() -> None:
    names = REGISTRY.names()
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "registry.py" or "services" in path.relative_to(SRC).parts[:1]:
            continue
        text = path.read_text()
        if all(f'"{n}"' in text for n in names):
            offenders.append(str(path.relative_to(SRC)))
    assert not offenders


def test_the_registry_refuses_inconsistent_services() -> None:
    clash = ServiceSpec(name="clash", summary="", ports={"clash-0": 10}, actions=(),
                        local="local:X")
    with pytest.raises(ValueError, match="port offset 10"):
        Registry((*REGISTRY.services, clash))
    lost = ServiceSpec(name="lost", summary="", ports={}, actions=(), local="local:X",
                       depends_on=("nowhere",))
    with pytest.raises(ValueError, match="unknown service nowhere"):
        Registry((lost,))
    with pytest.raises(ValueError, match="twice"):
        Registry((ECHO, ECHO))


def test_start_waves_follow_dependencies() -> None:
    waves = REGISTRY.start_waves()
    first = waves[0]
    assert "etcd" in first and "redis" in first and "timescaledb" not in first
    assert waves[1] == ["timescaledb"]  # Patroni needs its DCS
    assert any("oms" in w and "feast" in w for w in waves[2:])


def test_a_new_service_is_its_folder_and_one_line(tmp_path: Path) -> None:
    registry = Registry((*REGISTRY.services, ECHO))  # the one line

    catalog = Catalog.load(registry.action_modules())
    assert "echo.kill" in catalog.names(ActionKind.FAULT)
    assert set(full_catalog().names()) < set(catalog.names())

    model = settings_model(registry)
    settings = model(port_base=26000).with_overrides(["echo.directory_listing=false"])
    assert settings.of(EchoSettings).directory_listing is False
    assert settings.port("echo-0") == 26090
    with pytest.raises(UsageError, match=r"echo\.nothing"):
        settings.with_overrides(["echo.nothing=1"])

    target = LocalTarget(tmp_path, settings, registry=registry)
    assert registry.start_waves(["redis", "echo"]) == [["redis"], ["echo"]]
    dep = target.deployment("echo")
    dep.up()
    try:
        member = target.member("echo", "echo-0")
        assert target.is_running(member) and _accepts(member.port)
        undos: list[tuple[str, dict[str, object]]] = []
        ctx = RunContext(target=target, scenario="demo", history=History(),
                         record=lambda *a, **k: None, stop=threading.Event(),
                         _undo_sink=lambda name, args: undos.append((name, args)))
        spec = catalog.get("echo.kill")
        assert spec is not None
        result = spec.call(ctx, spec.bind({}))
        assert undos == [("echo.start", {"member": "echo-0"})]  # journaled before the kill
        assert result.members == ["echo-0"]
        assert not target.is_running(member) and not _accepts(member.port)  # outage seen
        undo = catalog.get("echo.start")
        assert undo is not None
        undo.call(ctx, undo.bind({"member": "echo-0"}))
        poll_until(lambda: _accepts(member.port), timeout=10, what="echo-0 to serve again")
    finally:
        dep.down()
    assert not target.is_running(target.member("echo", "echo-0"))

"""The local target: members are processes started from the state folder."""

from __future__ import annotations

import importlib
import os
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

from drillrunner.core.errors import StackError
from drillrunner.stack.settings import StackSettings, load_settings
from drillrunner.targets.base import MemberRef, Signal
from drillrunner.targets.local.deployment import LocalDeployment
from drillrunner.targets.local.supervisor import Supervisor, tail_text, tree_pids

# service -> "module:Class" of its local deployment, imported when first used.
DEPLOYMENTS = {
    "timescaledb": "drillrunner.services.timescaledb.local:PostgresDeployment",
    "redis": "drillrunner.services.redis.local:RedisDeployment",
    "oms": "drillrunner.services.oms.local:OmsDeployment",
    "nats": "drillrunner.services.nats.local:NatsDeployment",
    "feast": "drillrunner.services.feast.local:FeastDeployment",
    "kafka": "drillrunner.services.kafka.local:KafkaDeployment",
}

# Services that need others running before they start; the rest start side by side.
DEPENDS_ON = {"oms": ("timescaledb", "redis"), "feast": ("timescaledb", "redis")}

_SIGNALS = {Signal.KILL: signal.SIGKILL, Signal.TERM: signal.SIGTERM}


class LocalTarget:
    name = "local"

    def __init__(self, state: Path, settings: StackSettings | None = None) -> None:
        self.state = state
        loaded = settings or load_settings(state)
        if loaded is None:
            raise StackError(f"the local stack is not set up in {state}: run 'drill stack up'")
        self.settings = loaded
        self.sup = Supervisor(state)
        self._deployments: dict[str, Any] = {}

    def deployment(self, service: str) -> Any:
        """The service's local deployment (its service-specific operations live there)."""
        if service not in self._deployments:
            if service not in DEPLOYMENTS:
                raise StackError(f"the local target has no service {service!r}")
            module, cls = DEPLOYMENTS[service].split(":")
            factory = getattr(importlib.import_module(module), cls)
            self._deployments[service] = factory(self.settings, self.state, self.sup)
        return self._deployments[service]

    def deployments(self) -> list[LocalDeployment]:
        return [self.deployment(s) for s in DEPLOYMENTS]

    def up(self, on_ready: Callable[[str, float], None] = lambda _s, _t: None) -> None:
        """Start every service, in waves: those without dependencies side by side (their
        waits overlap: JVM start-up, sentinel discovery), then the ones that need them."""
        for dep in self.deployments():
            dep.check_binaries()
        done: set[str] = set()
        while len(done) < len(DEPLOYMENTS):
            wave = [s for s in DEPLOYMENTS if s not in done
                    and all(d in done for d in DEPENDS_ON.get(s, ()))]
            with ThreadPoolExecutor(max_workers=len(wave)) as pool:
                futures = {s: pool.submit(self._up_one, s) for s in wave}
            for service, future in futures.items():
                on_ready(service, future.result())  # re-raises the first failure
            done.update(wave)

    def _up_one(self, service: str) -> float:
        started = time.monotonic()
        self.deployment(service).up()
        return time.monotonic() - started

    def members(self, service: str) -> list[MemberRef]:
        members: list[MemberRef] = self.deployment(service).members()
        return members

    def member(self, service: str, name: str) -> MemberRef:
        for m in self.members(service):
            if m.name == name:
                return m
        raise StackError(f"{service} has no member {name!r}")

    def pid(self, member: MemberRef) -> int | None:
        return self.sup.pid(member.name)

    def is_running(self, member: MemberRef) -> bool:
        return self.sup.pid(member.name) is not None

    def kill(self, member: MemberRef, signal: Signal = Signal.KILL) -> None:
        self.sup.kill(member.name, _SIGNALS[signal])

    def pause(self, member: MemberRef) -> None:
        self.sup.signal_group(member.name, signal.SIGSTOP)

    def resume(self, member: MemberRef) -> None:
        self.sup.signal_group(member.name, signal.SIGCONT)

    def pause_process(self, member: MemberRef, pid: int) -> None:
        self._own(member, pid)
        os.kill(pid, signal.SIGSTOP)

    def resume_process(self, member: MemberRef, pid: int) -> None:
        with suppress(ProcessLookupError):  # gone: nothing left to resume
            os.kill(pid, signal.SIGCONT)

    def _own(self, member: MemberRef, pid: int) -> None:
        leader = self.sup.pid(member.name)
        if leader is None or pid not in tree_pids(leader):
            raise StackError(f"pid {pid} is not a process of {member.name}")

    def start(self, member: MemberRef) -> None:
        self.sup.start(self.deployment(member.service).spec(member.name))

    def log_tail(self, member: MemberRef, lines: int = 50) -> str:
        return tail_text(self.deployment(member.service).spec(member.name).log, lines)

    def member_config(self, member: MemberRef) -> dict[str, str]:
        dep = self.deployment(member.service)
        spec = dep.spec(member.name)
        out = {"argv": " ".join(spec.argv) + "\n"}
        for path in getattr(dep, "config_files", lambda _n: [])(member.name):
            try:
                out[Path(path).name] = Path(path).read_text()
            except OSError as exc:
                out[Path(path).name] = f"(unreadable: {exc.strerror})\n"
        return out

    def artifacts_dir(self) -> Path:
        path = self.state / "backups"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def describe(self) -> dict[str, str]:
        return {
            "target": self.name,
            "host": socket.gethostname(),
            "state_dir": str(self.state),
            "port_base": str(self.settings.port_base),
        }

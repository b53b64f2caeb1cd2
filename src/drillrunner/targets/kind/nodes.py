"""Node-level faults: `docker stop/start/pause/unpause` of a kind node container.

These are separate from pod faults: a stopped node takes every pod on it (the node goes
NotReady after ~40-50 s; StatefulSet pods stay Terminating until it returns). Only
containers labelled as nodes of this kind cluster are ever touched.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from drillrunner.core.errors import ActionFailed, MissingBinary

KIND_LABEL = "io.x-k8s.kind.cluster"

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120,
                          check=False)


@dataclass
class DockerNodes:
    """Stops, starts and freezes the node containers of kind cluster `cluster`."""

    cluster: str
    run: Runner = _run
    which: Callable[[str], str | None] = shutil.which
    calls: list[list[str]] = field(default_factory=list)  # every command run, for evidence

    def _docker(self, *args: str) -> subprocess.CompletedProcess[str]:
        if self.which("docker") is None:
            raise MissingBinary("docker is not installed or not on PATH: node faults on kind "
                                "need Docker (https://docs.docker.com/engine/install/)")
        argv = ["docker", *args]
        self.calls.append(argv)
        try:
            return self.run(argv)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ActionFailed(f"{' '.join(argv)}: {exc}") from None

    def _checked(self, *args: str) -> str:
        out = self._docker(*args)
        if out.returncode != 0:
            raise ActionFailed(f"docker {' '.join(args)}: {out.stderr.strip() or out.returncode}")
        return out.stdout.strip()

    def state(self, node: str) -> str:
        """The container's state: running, paused, exited... Refuses containers that are
        not nodes of this cluster."""
        label = self._checked("inspect", "-f", f'{{{{index .Config.Labels "{KIND_LABEL}"}}}}',
                              node)
        if label != self.cluster:
            raise ActionFailed(f"container {node!r} is not a node of kind cluster "
                               f"{self.cluster!r} (its label is {label or 'absent'}): refused")
        return self._checked("inspect", "-f", "{{.State.Status}}", node)

    def stop(self, node: str) -> None:
        if self.state(node) != "exited":
            self._checked("stop", node)

    def start(self, node: str) -> None:
        """Idempotent: unpauses a paused node, starts a stopped one."""
        state = self.state(node)
        if state == "paused":
            self._checked("unpause", node)
        elif state != "running":
            self._checked("start", node)

    def pause(self, node: str) -> None:
        if self.state(node) == "running":
            self._checked("pause", node)

    def unpause(self, node: str) -> None:
        if self.state(node) == "paused":
            self._checked("unpause", node)

    def is_node(self, node: str) -> bool:
        """Whether `node` is a container of this kind cluster that docker can reach (False
        without docker or its daemon, or for nodes that are not containers)."""
        try:
            self.state(node)
        except (ActionFailed, MissingBinary):
            return False
        return True

    def forget_flows(self, node: str, ip: str) -> int:
        """Delete the node's conntrack entries to and from `ip`, so packets of connections
        opened before a NetworkPolicy change are judged again (kindnet's policy check
        sees only a connection's first packet). Returns how many commands removed entries;
        conntrack exits 1 when nothing matched."""
        if self.state(node) != "running":
            return 0
        removed = 0
        for direction in ("-s", "-d"):
            out = self._docker("exec", node, "conntrack", "-D", direction, ip)
            if out.returncode not in (0, 1):
                raise ActionFailed(f"conntrack on {node}: {out.stderr.strip() or out.returncode}")
            removed += out.returncode == 0
        return removed

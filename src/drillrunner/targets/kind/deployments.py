"""Per-service operations on kind.

Every service gets `KindDeployment` (members, versions from the pods' images: enough for
preflight, the evidence and every generic fault). Service-specific ops protocols are
implemented where the API allows it; what needs files on a volume (wiping data, copying
backups in or out) raises ActionFailed("... not supported on kind yet").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from drillrunner.errors import ActionFailed
from drillrunner.targets.base import MemberRef

if TYPE_CHECKING:
    from drillrunner.targets.kind.target import KindTarget


def unsupported(what: str) -> ActionFailed:
    return ActionFailed(f"{what} is not supported on kind yet")


class KindDeployment:
    """A service as pods: listed by labels; started and stopped by `drill cluster`."""

    def __init__(self, target: KindTarget, service: str) -> None:
        self.target = target
        self.service = service

    def members(self) -> list[MemberRef]:
        return self.target.members(self.service)

    def check_binaries(self) -> None:
        """Nothing to install on the host: the images carry the servers."""

    def up(self) -> None:
        raise ActionFailed("on kind the stack is started by 'drill cluster up'")

    def down(self) -> None:
        raise ActionFailed("on kind the stack is removed by 'drill cluster down'")

    def versions(self) -> dict[str, str]:
        """The images the pods run (image@digest when the kubelet reports it)."""
        images: set[str] = set()
        core, ns = self.target.apis.core, self.target.namespace
        for pod in core.list_namespaced_pod(ns, label_selector=self.target._selector(
                self.service)).items:
            statuses = (pod.status.container_statuses if pod.status else None) or []
            images.update(s.image_id or s.image for s in statuses)
            if not statuses:
                images.update(c.image for c in pod.spec.containers)
        return {self.service: ", ".join(sorted(images)) or "unknown (no pods)"}


class KindRedisOps(KindDeployment):
    """RedisOps on kind. The pods configure their own role at start (from the manifests'
    startup script asking the sentinels), so prepare_* only check the member exists;
    data operations on volumes are not supported yet."""

    master_name = "drill"

    @property
    def appendonly(self) -> bool:
        return True  # the manifests run Redis with AOF on

    def servers(self) -> list[MemberRef]:
        return [m for m in self.members() if m.kind != "sentinel"]

    def sentinels(self) -> list[MemberRef]:
        return [m for m in self.members() if m.kind == "sentinel"]

    def current_master(self) -> MemberRef:
        """The running server that says it is master (asked through its address)."""
        from drillrunner.services.redis import client

        servers = self.servers()
        for server in servers:
            if not self.target.is_running(server):
                continue
            try:
                if client.info(server, "replication").get("role") == "master":
                    return server
            except Exception:
                continue
        if not servers:
            raise ActionFailed("no Redis server pods found")
        return servers[0]

    def prepare_server(self, name: str, replica_of: MemberRef | None, *,
                       appendonly: bool | None = None) -> None:
        if appendonly is not None and appendonly != self.appendonly:
            raise unsupported("changing Redis persistence")
        self.target.member(self.service, name)

    def prepare_sentinel(self, name: str, master: MemberRef, *, fresh: bool = False) -> None:
        if fresh:
            raise unsupported("resetting a sentinel's learned state")
        self.target.member(self.service, name)

    def has_data(self, name: str) -> bool:
        raise unsupported("inspecting a Redis volume")

    def wipe(self, name: str) -> None:
        raise unsupported("wiping a Redis volume")

    def copy_out(self, name: str, dest: Path) -> list[str]:
        raise unsupported("copying Redis data out of a pod")

    def copy_in(self, name: str, src: Path) -> None:
        raise unsupported("copying Redis data into a pod")

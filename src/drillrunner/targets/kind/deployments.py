"""Per-service operations on kind.

Every service gets `KindDeployment` (members, versions from the pods' images: enough for
preflight, the evidence and every generic fault). Service-specific ops protocols are
implemented where the API allows it; what needs files on a volume (wiping data, copying
backups in or out) raises ActionFailed("... not supported on kind yet").
"""

from __future__ import annotations

from drillrunner.core.errors import ActionFailed
from drillrunner.targets.base import MemberRef
from drillrunner.targets.pods import KindPods


def unsupported(what: str) -> ActionFailed:
    return ActionFailed(f"{what} is not supported on kind yet")


class KindDeployment:
    """A service as pods: listed by labels; started and stopped by `drill cluster`."""

    def __init__(self, target: KindPods, service: str) -> None:
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
        for pod in core.list_namespaced_pod(ns, label_selector=self.target.selector(
                self.service)).items:
            statuses = (pod.status.container_statuses if pod.status else None) or []
            images.update(s.image_id or s.image for s in statuses)
            if not statuses:
                images.update(c.image for c in pod.spec.containers)
        return {self.service: ", ".join(sorted(images)) or "unknown (no pods)"}


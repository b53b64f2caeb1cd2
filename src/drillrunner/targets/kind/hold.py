"""Members kept down on kind: the one hold mechanism every service adapter uses.

A StatefulSet recreates a deleted pod at once, so "killed until the undo" needs the new pod
to wait. Every stateful pod of deploy/k8s names a hold file on its volume (annotation
`drill.dev/hold-file`); its start waits while that file exists (a wait loop before the
server's exec, or the init container `drill-hold`), and its liveness probe passes while
held. `hold` creates the file, `kill` deletes the pod (holding it first), `release` or
`start` remove the file. A hold lives on the volume: it survives pod deletion and a crashed
drill, and the undo (a start) releases it.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from drillrunner.core.errors import ActionFailed
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.targets.base import MemberRef, Signal
from drillrunner.targets.kind.apis import http_status
from drillrunner.targets.kind.execution import PodExecution
from drillrunner.targets.kind.lookup import main_container, ready, running
from drillrunner.targets.pods import HoldState

HOLD_ANNOTATION = "drill.dev/hold-file"  # a file on the pod's volume that keeps it down
HOLD_CONTAINER = "drill-hold"  # the init container that waits while the hold file exists


class _NotYet(ActionFailed):
    """The pod cannot run a command yet (being recreated)."""


def hold_file(pod: Any) -> str | None:
    value = (pod.metadata.annotations or {}).get(HOLD_ANNOTATION)
    return str(value) if value else None


class HoldDown(PodExecution):
    """kill / start, and hold / release / hold_state for adapters that need a member down
    while they work on its volume."""

    def hold_path(self, member: MemberRef) -> str:
        """The member's hold file: its pod's annotation, else its StatefulSet's template's
        (the pod may be gone); ActionFailed if it declares none."""
        pod = self._pod(member.name)
        path = hold_file(pod) if pod is not None else None
        if path is None and "-" in member.name:
            with suppress(Exception):
                sts = self.apis.apps.read_namespaced_stateful_set(
                    member.name.rsplit("-", 1)[0], self.namespace)
                path = hold_file(sts.spec.template)
        if path is None:
            raise ActionFailed(f"{member.name}: its pod declares no hold file (annotation "
                               f"{HOLD_ANNOTATION}): it cannot be kept down")
        return path

    def hold(self, member: MemberRef, *, wait: float = 0.0) -> None:
        """Create the hold file in the running container (the process is untouched: a
        kill follows); idempotent. With `wait`, retried while the pod (being recreated)
        cannot run a command yet."""
        path = self.hold_path(member)
        script, what = f"touch {shlex.quote(path)}", f"holding {member.name} down ({path})"
        if wait <= 0:
            self.sh(member, script, what=what)
            return

        def touched() -> bool:
            try:
                result = self.exec(member, ["sh", "-c", script], timeout=60.0)
            except ActionFailed as exc:  # no pod, or its container not started
                raise _NotYet(f"{member.name}: {what} failed: {exc}") from None
            except Exception as exc:
                if http_status(exc) is None:
                    raise
                raise _NotYet(f"{member.name}: {what} failed: the API refused the exec "
                              f"({http_status(exc)})") from None
            if result.returncode != 0:
                tail = (result.stderr.strip() or result.stdout.strip())[-300:]
                raise ActionFailed(f"{member.name}: {what} failed "
                                   f"(exit {result.returncode}): {tail}")
            return True

        try:
            poll_until(touched, timeout=wait, interval=0.5, what=f"{member.name}: {what}",
                       retry_on=(_NotYet,))
        except WaitTimeout as exc:
            raise ActionFailed(str(exc)) from None

    def release(self, member: MemberRef) -> None:
        """Remove the hold file from the main container: a waiting pod starts its server."""
        path = self.hold_path(member)
        self.sh(member, f"rm -f {shlex.quote(path)}",
                what=f"releasing {member.name} ({path})")

    def hold_state(self, member: MemberRef, servers: Sequence[str]) -> HoldState | None:
        """HELD (hold file, PID 1 is not one of `servers`: shell patterns of its command
        name), HOLDING (the server still runs), FREE (no hold file); None when the pod
        cannot be asked (no pod, container not running)."""
        path = shlex.quote(self.hold_path(member))
        patterns = "|".join(servers)
        script = (f'if [ -e {path} ]; then case "$(cat /proc/1/comm)" in '
                  f"{patterns}) echo holding;; *) echo held;; esac; else echo free; fi")
        try:
            result = self.exec(member, ["sh", "-c", script], timeout=60.0)
        except ActionFailed:
            return None
        except Exception as exc:
            if http_status(exc) is None:
                raise
            return None
        if result.returncode != 0:
            return None
        try:
            return HoldState(result.stdout.strip())
        except ValueError:
            return None

    # -- kill and start ------------------------------------------------------------------

    def kill(self, member: MemberRef, signal: Signal = Signal.KILL, *,
             hold: bool = True) -> None:
        """Delete the pod, with grace 0 (KILL) or its own grace period (TERM), and wait
        until that pod (by UID) is gone. Its controller creates a new one.

        A pod that declares a hold file (annotation drill.dev/hold-file) is held down
        first: the file is created on its volume, and the new pod waits (its start gate, or
        the `drill-hold` init container) until `start` removes it. Killed members then stay
        down until their undo, as on the local target, instead of being back in seconds."""
        pod = self._pod(member.name)
        if pod is None:
            return  # already gone
        path = hold_file(pod) if hold else None  # hold=False: the caller held it already
        if path:
            self._touch_hold(member, path)
        uid = pod.metadata.uid
        grace = pod.spec.termination_grace_period_seconds or 30
        try:
            if signal is Signal.KILL:
                self.apis.core.delete_namespaced_pod(member.name, self.namespace,
                                                     grace_period_seconds=0)
            else:
                self.apis.core.delete_namespaced_pod(member.name, self.namespace)
        except Exception as exc:
            if http_status(exc) != 404:
                if path:  # not deleted: a hold left on a running pod would outlive drill
                    with suppress(Exception):
                        self.exec(member, ["rm", "-f", path])
                raise

        def gone() -> bool:
            now = self._pod(member.name)
            return now is None or now.metadata.uid != uid

        poll_until(gone, timeout=float(grace) + 30.0, interval=0.2,
                   what=f"pod {member.name} to be deleted")

    def _touch_hold(self, member: MemberRef, path: str) -> None:
        """Create the hold file in the running main container. A container that just
        died (its status lags) cannot hold: that is fine, as long as it is not running."""
        pod = self._pod(member.name)
        if pod is None or not running(pod, main_container(pod)):
            return
        try:
            self.sh(member, f"touch {shlex.quote(path)}",
                    what=f"holding {member.name} down ({path})")
        except ActionFailed:
            pod = self._pod(member.name)
            if pod is not None and running(pod, main_container(pod)):
                raise

    def start(self, member: MemberRef, timeout: float = 300.0) -> None:
        """Pods are restarted by their controller: release a held pod (remove its hold file,
        from whichever of its containers waits) and wait until it is Ready again."""
        released: set[str] = set()

        def up() -> bool:
            pod = self._pod(member.name)
            if pod is None or pod.metadata.deletion_timestamp is not None:
                return False
            if ready(pod):
                return True
            path = hold_file(pod)
            if path and pod.metadata.uid not in released:
                waiting = next((c for c in (HOLD_CONTAINER, main_container(pod))
                                if running(pod, c)), None)
                if waiting is not None:
                    try:
                        result = self.exec(member, ["rm", "-f", path], container=waiting)
                    except ActionFailed:
                        return False  # the container changed meanwhile: next poll
                    if result.returncode != 0:
                        raise ActionFailed(f"{member.name}: releasing {path} failed: "
                                           f"{result.stderr.strip() or result.returncode}")
                    released.add(pod.metadata.uid)
            return False

        poll_until(up, timeout=timeout, interval=0.5, what=f"pod {member.name} to be Ready")

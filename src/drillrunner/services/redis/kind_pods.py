"""The pods of deploy/k8s/redis as drill reaches them: members, the addresses they give
each other, exec of sh and redis-cli in them, and their hold-down state (kind.py)."""


from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import TypeVar

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.targets.base import MemberRef
from drillrunner.targets.kind.deployments import KindDeployment
from drillrunner.targets.pods import ExecResult, HoldState

SERVER_PORT = 6379
SENTINEL_PORT = 26379
GOVERNING = {"server": "redis-headless", "sentinel": "redis-sentinel"}  # headless Services
SERVER_COMMS = ("redis-*",)  # PID 1 of a pod whose server (or sentinel) runs
ERROR_REPLY = r"(\(error\) )?(ERR|WRONGTYPE|NOAUTH|LOADING|READONLY|BUSY|MASTERDOWN)\b"
T = TypeVar("T")


class NoExec(ActionFailed):
    """The pod cannot run a command now: no pod, or its container is not running."""


class KindRedisPods(KindDeployment):
    """Members, addresses and exec in the Redis pods; KindRedisOps builds on it."""

    server_dir = "/data"  # the volumes' mount paths in servers.yaml / sentinels.yaml
    sentinel_dir = "/sentinel"
    wait = 120.0  # for a recreated pod's container to run (image present: seconds)

    # -- members and addresses ---------------------------------------------------------

    def servers(self) -> list[MemberRef]:
        return [m for m in self.members() if m.kind != "sentinel"]

    def sentinels(self) -> list[MemberRef]:
        return [m for m in self.members() if m.kind == "sentinel"]

    def _ref(self, name: str) -> MemberRef:
        try:
            return self.target.member(self.service, name)
        except StackError as exc:
            raise ActionFailed(str(exc)) from None

    def _dir(self, member: MemberRef) -> str:
        return self.sentinel_dir if member.kind == "sentinel" else self.server_dir

    def in_cluster(self, member: MemberRef) -> str:
        """The member's DNS name as the other members use it."""
        return f"{member.name}.{GOVERNING[member.kind]}.{self.target.namespace}.svc.cluster.local"

    def member_for(self, host: str, port: int) -> MemberRef | None:
        """The member named by an in-cluster DNS name or pod IP and its container port (or
        by the address the target hands out); None for anything else."""
        members = self.members()
        for m in members:
            if (m.host, m.port) == (host, port):
                return m
        name: str | None = None
        try:
            ipaddress.ip_address(host)
        except ValueError:
            labels = host.split(".")
            name = labels[0]
            governing = labels[1] if len(labels) > 1 else None
        else:
            governing = None
            name = next((p.name for p in self.target.pods(self.service) if p.ip == host),
                        None)
        for m in members:
            if m.name != name or (governing and governing != GOVERNING[m.kind]):
                continue
            if port == (SENTINEL_PORT if m.kind == "sentinel" else SERVER_PORT):
                return m
        return None

    # -- exec helpers ------------------------------------------------------------------

    def _exec(self, member: MemberRef, argv: list[str], what: str) -> ExecResult:
        """target.exec; NoExec naming the pod when it cannot run (no pod, container not
        started, the API refusing the exec)."""
        try:
            return self.target.exec(member, argv, timeout=60.0)
        except ActionFailed as exc:
            raise NoExec(f"{member.name}: {what} failed: {exc}") from None
        except Exception as exc:  # the API's own errors (ApiException, websocket)
            raise NoExec(f"{member.name}: {what} failed: cannot exec in the pod "
                         f"({type(exc).__name__})") from None

    def _sh(self, member: MemberRef, script: str, what: str) -> str:
        """Run a script in the member's pod: its stdout, or ActionFailed naming the pod."""
        result = self._exec(member, ["sh", "-c", script], what)
        if result.returncode != 0:
            tail = (result.stderr.strip() or result.stdout.strip())[-300:]
            raise ActionFailed(f"{member.name}: {what} failed (exit {result.returncode}): "
                               f"{tail}")
        return result.stdout

    def _poll(self, condition: Callable[[], T | None], what: str,
              retry_on: tuple[type[BaseException], ...] = ()) -> T:
        """poll_until for `self.wait`; a timeout is an ActionFailed (`what` names the pod)."""
        try:
            return poll_until(condition, timeout=self.wait, interval=0.5, what=what,
                              retry_on=retry_on)
        except WaitTimeout as exc:
            raise ActionFailed(str(exc)) from None

    def _sh_when_up(self, member: MemberRef, script: str, what: str) -> str:
        """`_sh`, retried while the pod (being recreated) has no running container."""
        return self._poll(lambda: self._sh(member, script, what) or "\n",
                          f"{member.name}: {what}", retry_on=(NoExec,))

    def _cli(self, member: MemberRef, *args: str) -> str:
        """redis-cli in the member's pod, raw output; ActionFailed on an error reply."""
        port = SENTINEL_PORT if member.kind == "sentinel" else SERVER_PORT
        what = f"redis-cli {' '.join(args[:2])}"
        result = self._exec(member, ["redis-cli", "--raw", "-p", str(port), *args], what)
        out = result.stdout
        if result.returncode != 0 or re.match(ERROR_REPLY, out):
            detail = (result.stderr.strip() or out.strip())[-300:]
            raise ActionFailed(f"{member.name}: {what} failed: {detail}")
        return out

    def _settled_state(self, member: MemberRef) -> HoldState:
        """HELD or FREE, once the pod's container runs and a held one has stopped."""
        def settled() -> HoldState | None:
            state = self.target.hold_state(member, SERVER_COMMS)
            return state if state in (HoldState.HELD, HoldState.FREE) else None

        return self._poll(settled, f"{member.name} to be up or held down")

    def _require_held(self, member: MemberRef, what: str) -> None:
        """Refuse unless the member is held down (its pod runs, Redis does not)."""
        if self.target.is_running(member):
            raise ActionFailed(f"{member.name} is running: {what} while its pod serves is not "
                               "supported on kind yet; hold it and kill it first")
        if self._settled_state(member) != HoldState.HELD:
            raise ActionFailed(f"{member.name} is not held down: {what} needs hold() before "
                               "the kill (its recreated pod starts Redis at once otherwise)")

    def _release(self, member: MemberRef) -> None:
        self.target.release(member)

"""Commands and files in a member's container, through the API server (no kubectl)."""

from __future__ import annotations

import base64
import shlex
from collections.abc import Sequence
from typing import Any

from drillrunner.core.errors import ActionFailed
from drillrunner.targets.base import MemberRef
from drillrunner.targets.kind.apis import own_client
from drillrunner.targets.kind.lookup import PodLookup, main_container
from drillrunner.targets.pods import ExecResult

ERROR_CHANNEL = 3  # the exec websocket's status channel


def exit_code(status_text: str | None) -> int | str:
    """The command's exit code from the exec status (a metav1.Status), or the reason it
    did not run (the client's own `returncode` raises ValueError on any status that is
    not an exit code, e.g. a missing executable)."""
    import yaml

    status = yaml.safe_load(status_text or "") or {}
    if not isinstance(status, dict) or status.get("status", "Success") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
            return int(cause["message"])
    return str(status.get("message") or status.get("reason") or "exec failed")


def _send_stdin(resp: Any, data: str) -> None:
    """Send `data` and close stdin. A command that needs only part of its input (`head -c
    5`) may finish first and the API server close the stream: the write then fails on a
    closed socket, while its output and exit status are already on their way to us and are
    read next, as for any command. The write failing is therefore not the exec failing."""
    from websocket import WebSocketException

    try:
        resp.write_stdin(data)
        resp.close_channel(0)  # EOF on stdin
    except (WebSocketException, OSError):
        pass


class PodExecution(PodLookup):
    """exec, shell scripts, file copies, logs and signals to single processes."""

    def exec(self, member: MemberRef, argv: Sequence[str], *, timeout: float = 60.0,
             container: str | None = None, stdin: str | None = None) -> ExecResult:
        """Run `argv` in the member's container through the API server (no kubectl).

        `stdin` is sent and then closed (the v5 channel protocol, Kubernetes >= 1.30);
        binary data goes through `write_file`, which needs no stdin at all."""
        pod = self._require_pod(member)
        with own_client(self.apis.core) as core:
            resp = self.apis.stream(
                core.connect_get_namespaced_pod_exec, member.name, self.namespace,
                command=list(argv), container=container or main_container(pod), stderr=True,
                stdin=stdin is not None, stdout=True, tty=False, _preload_content=False)
        try:
            if stdin is not None:
                _send_stdin(resp, stdin)
            resp.run_forever(timeout=timeout)
            if resp.is_open():
                raise ActionFailed(f"{member.name}: {argv[0]} did not finish in {timeout:g}s")
            code = exit_code(resp.read_channel(ERROR_CHANNEL))
            if isinstance(code, str):
                raise ActionFailed(f"{member.name}: {argv[0]}: {code}")
            return ExecResult(returncode=code, stdout=resp.read_stdout() or "",
                              stderr=resp.read_stderr() or "")
        finally:
            resp.close()

    def sh(self, member: MemberRef, script: str, *, timeout: float = 60.0,
           what: str | None = None) -> str:
        """Run a shell script in the member's container; its stdout, or ActionFailed
        naming `what` (default: the script) with the tail of stderr."""
        result = self.exec(member, ["sh", "-c", script], timeout=timeout)
        if result.returncode != 0:
            tail = (result.stderr.strip() or result.stdout.strip())[-400:]
            raise ActionFailed(f"{member.name}: {what or script} failed "
                               f"(exit {result.returncode}): {tail}")
        return result.stdout

    def read_file(self, member: MemberRef, path: str, *, timeout: float = 120.0) -> bytes:
        """A file's bytes from the container (base64 over exec: binary-safe)."""
        out = self.sh(member, f"base64 < {shlex.quote(path)}", timeout=timeout,
                      what=f"reading {path}")
        return base64.b64decode("".join(out.split()))

    def write_file(self, member: MemberRef, path: str, data: bytes, *,
                   chunk: int = 48 * 1024, timeout: float = 120.0) -> None:
        """Write `data` to `path` in the container, in base64 chunks small enough for one
        argv each (no stdin needed: works with every exec protocol version)."""
        tmp = shlex.quote(path + ".drill-part")
        self.sh(member, f": > {tmp}", what=f"creating {path}")
        encoded = base64.b64encode(data).decode()
        for i in range(0, len(encoded), chunk):
            piece = encoded[i:i + chunk]
            self.sh(member, f"printf %s '{piece}' | base64 -d >> {tmp}", timeout=timeout,
                    what=f"writing {path}")
        self.sh(member, f"mv {tmp} {shlex.quote(path)}", what=f"writing {path}")

    def log_tail(self, member: MemberRef, lines: int = 50) -> str:
        pod = self._require_pod(member)
        text = self.apis.core.read_namespaced_pod_log(
            member.name, self.namespace, container=main_container(pod), tail_lines=lines)
        return str(text)

    def pause_process(self, member: MemberRef, pid: int) -> None:
        """SIGSTOP one process inside the pod (a PID as the container sees it)."""
        self._signal_in_pod(member, pid, "STOP")

    def resume_process(self, member: MemberRef, pid: int) -> None:
        if self._pod(member.name) is not None:  # gone: nothing left to resume
            self._signal_in_pod(member, pid, "CONT", missing_ok=True)

    def _signal_in_pod(self, member: MemberRef, pid: int, sig: str,
                       missing_ok: bool = False) -> None:
        script = f"kill -{sig} {int(pid)}" + (" 2>/dev/null || true" if missing_ok else "")
        result = self.exec(member, ["sh", "-c", script], timeout=30.0)
        if result.returncode != 0:
            raise ActionFailed(f"{member.name}: kill -{sig} {pid} failed: "
                               f"{result.stderr.strip() or result.returncode}")

"""Start, signal and stop server processes by PID; never by name.

Each member runs in its own session (process group), so a kill or a pause reaches every
process of that server, as a container's would. A PID record with the process's start time
guards against PID reuse after a reboot or a stale file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from drillrunner.core.errors import StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.targets.local.netcut import Cgroups


class _Exited(Exception):
    """The process ended while drill waited for it to open its port."""


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    port: int
    log: Path
    cwd: Path
    user: str | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)  # may hold a password


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    return raw[raw.rindex(")") + 2 :].split()


def process_state(pid: int) -> str | None:
    """The kernel's state letter for `pid` (R, S, T, Z...), or None if it is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def command_line(pid: int) -> bytes:
    """The process's NUL-separated argv, empty if it is gone or unreadable."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def pids_working_in(folder: Path) -> list[int]:
    """Live (non-zombie) processes whose working directory is `folder`, sorted."""
    where = str(folder.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd == where and process_state(int(entry.name)) not in (None, "Z"):
            found.append(int(entry.name))
    return sorted(found)


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _live_processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live (non-zombie) process."""
    table = {}
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields and fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def tree_pids(root: int) -> list[int]:
    """The member's live processes: its process group and every descendant. Servers such as
    PostgreSQL put each child in a session of its own, so the group alone misses them."""
    table = _live_processes()
    found = {pid for pid, (_, group) in table.items() if group == root}
    if root in table:
        found.add(root)
    frontier = set(found)
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return sorted(found)


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    """Signal each PID; one already gone is skipped."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, sig)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Supervisor:
    """Keeps one PID record per member under `<state>/run/`."""

    def __init__(self, state_dir: Path) -> None:
        self.run_dir = state_dir / "run"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Processes this drill process spawned: reaped here so no zombie holds a lock file.
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        # Each member in a cgroup of its own, so network faults can tell members apart.
        self.cgroups = Cgroups(state_dir)

    def _record(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def pid(self, name: str) -> int | None:
        """The member's PID if its recorded process is still alive (not a zombie)."""
        path = self._record(name)
        try:
            rec = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        pid = int(rec["pid"])
        if _start_ticks(pid) != rec.get("start_ticks") or process_state(pid) in (None, "Z"):
            return None  # stale record: the process is gone or the PID was reused
        return pid

    def is_paused(self, name: str) -> bool:
        pid = self.pid(name)
        return pid is not None and process_state(pid) == "T"

    def start(self, spec: ProcessSpec, *, ready_timeout: float = 30.0) -> int:
        """Spawn the member in its own session; return once its port accepts connections."""
        if (pid := self.pid(spec.name)) is not None:
            return pid
        self._wait_previous_reaped(spec.name)
        if port_in_use(spec.port):
            raise StackError(
                f"{spec.name}: port 127.0.0.1:{spec.port} is already in use by another "
                "process; stop it or choose other ports (drill stack up --port-base N)"
            )
        spec.log.parent.mkdir(parents=True, exist_ok=True)
        # Joins its cgroup before exec (and drops to spec.user after): its sockets carry it.
        wrapped = self.cgroups.wrap(spec.name, spec.argv, spec.user)
        with open(spec.log, "ab") as log:
            try:
                proc = subprocess.Popen(
                    wrapped or spec.argv,
                    cwd=spec.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    user=None if wrapped else spec.user,
                    env={**_base_env(), **spec.env},
                )
            except FileNotFoundError as exc:
                raise StackError(f"{spec.name}: cannot run {spec.argv[0]}: {exc}") from None
        self._children[proc.pid] = proc
        record = {"pid": proc.pid, "start_ticks": _start_ticks(proc.pid), "argv": spec.argv}
        self._record(spec.name).write_text(json.dumps(record))
        def ready() -> bool:
            if proc.poll() is not None:
                raise _Exited  # no use waiting out the timeout
            return port_accepts(spec.port)

        try:
            poll_until(ready, timeout=ready_timeout,
                       what=f"{spec.name} to accept connections on port {spec.port}")
        except (WaitTimeout, _Exited):
            code = proc.poll()
            tail = tail_text(spec.log, 8)
            state = f"exited with code {code}" if code is not None else "did not open its port"
            raise StackError(f"{spec.name} {state}; last lines of {spec.log}:\n{tail}") from None
        return proc.pid

    def signal_group(self, name: str, sig: signal.Signals) -> int:
        """Signal every process of the member (for SIGSTOP/SIGCONT: freeze or thaw it)."""
        pid = self.pid(name)
        if pid is None:
            raise StackError(f"{name} is not running")
        signal_all(tree_pids(pid), sig)
        return pid

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL, timeout: float = 15.0) -> None:
        """Signal the member (KILL: every process of it, as a crash would; TERM: the main
        process, as an orderly shutdown) and wait until every process of it is gone."""
        pid = self.pid(name)
        if pid is None:
            return
        pids = tree_pids(pid)
        if not pids:
            return  # it exited between the two reads
        if sig == signal.SIGKILL:
            # Never thaw before a KILL: a frozen process given even a moment to run could
            # still ship data (a paused walsender would flush its WAL), hiding a loss.
            signal_all(pids, sig)
        else:
            signal_all(pids, signal.SIGCONT)  # a stopped process cannot act on TERM
            os.kill(pid, sig)
        self.wait_gone(name, pids, timeout)

    def stop(self, name: str, timeout: float = 20.0) -> None:
        """TERM, then KILL if the member has not exited within `timeout`."""
        pid = self.pid(name)
        if pid is None:
            self._record(name).unlink(missing_ok=True)
            self.cgroups.release(name)
            return
        try:
            self.kill(name, signal.SIGTERM, timeout)
        except StackError:
            self.kill(name, signal.SIGKILL, 10.0)
        self._record(name).unlink(missing_ok=True)
        self.cgroups.release(name)

    def wait_gone(self, name: str, pids: list[int], timeout: float) -> None:
        try:
            poll_until(
                lambda: all(process_state(p) in (None, "Z") for p in pids),
                timeout=timeout,
                interval=0.02,
                what=f"{name} (pid {pids[0]}) to exit",
            )
        except WaitTimeout as exc:
            raise StackError(str(exc)) from None
        for pid in pids:
            child = self._children.pop(pid, None)
            if child is not None:
                child.wait()

    def _wait_previous_reaped(self, name: str) -> None:
        """A killed server's zombie keeps its PID (and so a lock file such as PostgreSQL's
        postmaster.pid) until its parent reaps it: wait for that before starting again."""
        try:
            old = int(json.loads(self._record(name).read_text())["pid"])
        except (FileNotFoundError, ValueError, KeyError):
            return
        if (child := self._children.pop(old, None)) is not None:
            child.wait()
        with suppress(WaitTimeout):
            poll_until(lambda: process_state(old) != "Z", timeout=5.0, interval=0.02,
                       what=f"pid {old} to be reaped")

    def wait_reaped(self, pid: int, timeout: float = 5.0) -> None:
        """Wait until not even a zombie of `pid` is left (its parent, or init, reaped it)."""
        poll_until(
            lambda: process_state(pid) is None, timeout=timeout, interval=0.02,
            what=f"pid {pid} to be reaped",
        )


def _base_env() -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    return {k: os.environ[k] for k in keep if k in os.environ}


def tail_text(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(data.splitlines()[-lines:])

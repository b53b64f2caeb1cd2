"""One drill at a time per target: a lock file holding the owner's PID and run id."""

from __future__ import annotations

import json
import os
from pathlib import Path

from drillrunner.core.errors import LockHeld


def pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class TargetLock:
    def __init__(self, state: Path, run_id: str, journal: Path,
                 recover: str = "drill recover") -> None:
        self.path = state / "drill.lock"
        self.recover = recover
        self.run_id = run_id
        self.journal = journal

    @staticmethod
    def holder(state: Path) -> dict[str, object] | None:
        try:
            data: dict[str, object] = json.loads((state / "drill.lock").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return data

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = self.holder(self.path.parent) or {}
            pid = int(str(held.get("pid", 0)) or 0)
            if held.get("ended"):
                raise LockHeld(
                    f"drill run {held.get('run_id')} left an undo pending ({held.get('ended')}); "
                    f"run '{self.recover}' to replay it and clear the lock") from None
            if pid and pid_alive(pid):
                raise LockHeld(
                    f"another drill (pid {pid}, run {held.get('run_id')}) is running on this "
                    "target; wait for it to finish"
                ) from None
            raise LockHeld(
                f"a drill (pid {pid}, run {held.get('run_id')}) ended without cleaning up; "
                f"run '{self.recover}' to undo its faults and clear the lock"
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "run_id": self.run_id,
                       "journal": str(self.journal)}, f)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)

    def keep(self, why: str) -> None:
        """The run is over but the lock stays (an undo failed): say so, so that `drill
        recover` need not wait for the run's process to exit."""
        held = self.holder(self.path.parent) or {}
        self.path.write_text(json.dumps({**held, "ended": why}))

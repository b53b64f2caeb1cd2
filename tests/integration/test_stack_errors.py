"""The local stack's own failures: a port taken, a stale PID file, a missing binary, a full
data folder. Each gives a clear error naming the member, and `up()` works again once the
cause is gone. Only the Redis tier is started (its own state folder, port base 26000)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drillrunner.core.errors import MissingBinary, StackError
from tests.integration.conftest import local_target, need_redis

pytestmark = pytest.mark.integration
PORT_BASE = 26000


@pytest.fixture(scope="module")
def state() -> Iterator[Path]:
    need_redis()
    folder = Path(tempfile.mkdtemp(prefix="drill-stack-errors-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        redis(folder).down()
        shutil.rmtree(folder, ignore_errors=True)


def redis(state: Path) -> Any:
    return local_target(state, PORT_BASE).deployment("redis")


def all_running(dep: Any, state: Path) -> bool:
    target = local_target(state, PORT_BASE)
    return all(target.is_running(m) for m in dep.members())


def test_port_already_taken(state: Path) -> None:
    dep = redis(state)
    dep.down()
    member = dep.servers()[0]
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", member.port))
        sock.listen()
        with pytest.raises(StackError) as err:
            redis(state).up()
    assert member.name in str(err.value) and f"127.0.0.1:{member.port}" in str(err.value)
    assert "already in use" in str(err.value)
    redis(state).up()  # the port is free again: up() works
    assert all_running(dep, state)


def test_stale_pid_file_is_ignored(state: Path) -> None:
    dep = redis(state)
    dep.down()
    dead = subprocess.Popen(["true"])
    dead.wait()
    for member in dep.members():  # every record points at a process that is gone
        (state / "run" / f"{member.name}.json").write_text(
            json.dumps({"pid": dead.pid, "start_ticks": 1, "argv": ["redis-server"]}))
    redis(state).up()
    assert all_running(dep, state)


def test_missing_binary_says_what_to_install(state: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from drillrunner.services.redis import local as local_redis

    dep = redis(state)
    dep.down()
    monkeypatch.setattr(local_redis.shutil, "which", lambda _name: None)
    monkeypatch.setattr(local_redis, "Path", lambda _p: Path("/nonexistent/redis-server"))
    with pytest.raises(MissingBinary) as err:
        redis(state).up()
    assert "redis-server not found" in str(err.value) and "install" in str(err.value)
    assert not any(local_target(state, PORT_BASE).is_running(m)
                   for m in dep.members())  # nothing was started
    monkeypatch.undo()
    redis(state).up()
    assert all_running(dep, state)


def _fill_up(data: Path) -> str:
    """A full data folder: a 1 MiB tmpfs filled to the brim (root), else a file where the
    folder should be (the server cannot write there either)."""
    data.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(data)
    data.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(data)],
                           capture_output=True, check=False)
    if mount.returncode == 0:
        with open(data / "filler", "wb") as f, pytest.raises(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        return "tmpfs"
    data.rmdir()
    data.write_text("not a folder")
    return "file"


def _release(data: Path, how: str) -> None:
    if how == "tmpfs":
        subprocess.run(["umount", str(data)], check=True)
    else:
        data.unlink()
    data.mkdir(exist_ok=True)


def test_full_data_folder_names_the_member(state: Path) -> None:
    dep = redis(state)
    dep.down()
    replica = dep.servers()[1].name
    data = dep.data_dir(replica)
    how = _fill_up(data)
    try:
        with pytest.raises(StackError) as err:
            redis(state).up()
        assert replica in str(err.value), (how, str(err.value))
    finally:
        _release(data, how)
    redis(state).up()
    assert all_running(dep, state)

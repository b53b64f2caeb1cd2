"""pgBackRest for the timescaledb service: its configuration, the commands PostgreSQL runs
(archive_command, restore_command) and the parsing of what pgBackRest reports.

One stanza, `drill`, in a repository under the stack's state folder
(`<state>/timescaledb/pgbackrest/repo`); its configuration, logs, locks and spool live
beside it, never in /etc or /var/log. The configuration lists every standing member
(pg1, pg2...): `pgbackrest backup` connects to each, finds the primary itself and backs it
up, so the same file serves after a failover with no edit, and an operator's own
`pgbackrest --config=... --stanza=drill backup` does what drill does.

The archive and restore commands name no member: each passes its own data folder
(`$(pwd)`: PostgreSQL runs them from it) as pg1-path, so one command suits every member,
a promoted standby pushing its new timeline included, and a Patroni cluster can share it
in its cluster-wide parameters.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from drillrunner.core.errors import MissingBinary, StackError

STANZA = "drill"
PG_USER = "postgres"
BINARY = "pgbackrest"
INSTALL = "install the Debian package pgbackrest (apt-get install pgbackrest)"
# How long a backup waits for its last WAL segment to reach the repository. A member
# whose archiving is broken fails the backup after this long instead of the default 60s.
ARCHIVE_TIMEOUT_SECONDS = 30
# lz4: the fastest compression pgBackRest offers; the drill's data set is small.
COMPRESS_TYPE = "lz4"


class WalArchive(StrEnum):
    """Where the members' WAL goes: pgBackRest's repository, or nowhere (`/bin/true`
    reports every segment archived and keeps none: a broken variant drills must catch)."""

    PGBACKREST = "pgbackrest"
    NONE = "none"


class BackupType(StrEnum):
    FULL = "full"
    DIFF = "diff"
    INCR = "incr"


@dataclass(frozen=True)
class Layout:
    """Where pgBackRest keeps everything, under the service's state folder."""

    root: Path

    @classmethod
    def of(cls, service_root: Path) -> Layout:
        return cls(service_root / "pgbackrest")

    @property
    def config(self) -> Path:
        return self.root / "pgbackrest.conf"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def folders(self) -> tuple[Path, ...]:
        """Every folder pgBackRest writes to, the root first."""
        return (self.root, self.repo, self.root / "log", self.root / "lock",
                self.root / "spool")

    def backup_dir(self, label: str) -> Path:
        return self.repo / "backup" / STANZA / label


@dataclass(frozen=True)
class PgMember:
    """A member pgBackRest may back up from (the primary is found among them)."""

    path: Path
    port: int
    socket_dir: Path


class HasStateRoot(Protocol):
    """What the archive and restore commands need of a deployment."""

    root: Path


def config_text(layout: Layout, members: list[PgMember]) -> str:
    """pgbackrest.conf for the stanza; written by drill, rewritten on every start."""
    glob = {
        "repo1-path": layout.repo,
        "repo1-retention-full": 2,
        "log-path": layout.root / "log",
        "lock-path": layout.root / "lock",
        "spool-path": layout.root / "spool",
        "log-level-console": "warn",
        "log-level-file": "info",
        "compress-type": COMPRESS_TYPE,
        "archive-timeout": ARCHIVE_TIMEOUT_SECONDS,
        "start-fast": "y",  # an immediate checkpoint: a drill does not wait 5 minutes
        "process-max": 2,
    }
    stanza: dict[str, object] = {}
    for i, m in enumerate(members, start=1):
        stanza |= {f"pg{i}-path": m.path, f"pg{i}-port": m.port,
                   f"pg{i}-socket-path": m.socket_dir, f"pg{i}-user": PG_USER}
    body = ["# Written by drill; rewritten on every backup.", "[global]"]
    body += [f"{k}={v}" for k, v in glob.items()]
    body += ["", f"[{STANZA}]"] + [f"{k}={v}" for k, v in stanza.items()]
    return "\n".join(body) + "\n"


def _base(layout: Layout) -> str:
    return f"{BINARY} --config={shlex.quote(str(layout.config))} --stanza={STANZA}"


def archive_command(files: HasStateRoot, mode: WalArchive | str = WalArchive.PGBACKREST) -> str:
    """PostgreSQL's archive_command: pgBackRest pushes the segment into the repository
    (never overwriting a different one), from whichever member runs it."""
    if WalArchive(mode) is WalArchive.NONE:
        return "/bin/true"
    return f'{_base(Layout.of(files.root))} --pg1-path="$(pwd)" archive-push %p'


def restore_command(files: HasStateRoot) -> str:
    """PostgreSQL's restore_command: fetch a segment from the repository."""
    return f'{_base(Layout.of(files.root))} --pg1-path="$(pwd)" archive-get %f "%p"'


def restore_argv(layout: Layout, data: Path, target_time: str, label: str | None) -> list[str]:
    """`pgbackrest restore` into `data`, replaying to `target_time`, then promoting."""
    argv = [f"--pg1-path={data}", "--type=time", f"--target={target_time}",
            "--target-action=promote", "--archive-mode=off"]
    return argv + ([f"--set={label}"] if label else []) + ["restore"]


# -- running it ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    argv: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def text(self) -> str:
        return (self.stderr + "\n" + self.stdout).strip()


class PgBackRestFailed(StackError):
    """pgBackRest exited non-zero; the message carries its own words."""


def run(layout: Layout, *args: str, timeout: float = 300.0, check: bool = True) -> Outcome:
    """Run `pgbackrest <args>` for the stanza as the postgres user (it owns the repo)."""
    import time

    if shutil.which(BINARY) is None:
        raise MissingBinary(f"{BINARY} not found: {INSTALL}")
    argv = [BINARY, f"--config={layout.config}", f"--stanza={STANZA}", *args]
    started = time.monotonic()
    try:
        out = subprocess.run(argv, user=PG_USER, cwd=layout.root, capture_output=True,
                             text=True, timeout=timeout, check=False,
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                  "LC_ALL": "C.UTF-8"})
    except subprocess.TimeoutExpired:
        raise PgBackRestFailed(f"pgbackrest {' '.join(args)} did not finish within "
                               f"{timeout:g}s") from None
    result = Outcome(argv, out.returncode, out.stdout, out.stderr,
                     round(time.monotonic() - started, 3))
    if check and out.returncode != 0:
        raise PgBackRestFailed(f"pgbackrest {args[-1] if args else ''} failed (exit "
                               f"{out.returncode}): {result.text[-1500:]}")
    return result


# -- what it reports ----------------------------------------------------------------------


@dataclass(frozen=True)
class BackupEntry:
    label: str
    type: str
    size: int  # bytes of the database at backup time
    repo_size: int  # bytes stored in the repository (compressed; an incr's delta only)
    started: int
    stopped: int
    wal_start: str
    wal_stop: str


def parse_info(text: str) -> tuple[str, list[BackupEntry]]:
    """`pgbackrest info --output=json` of one stanza: its status message and backups."""
    data: list[dict[str, Any]] = json.loads(text)
    if not data:
        return "no stanza", []
    stanza = data[0]
    status = str(stanza.get("status", {}).get("message", "?"))
    entries = []
    for b in stanza.get("backup", []):
        info, repo = b.get("info", {}), b.get("info", {}).get("repository", {})
        entries.append(BackupEntry(
            label=b["label"], type=b["type"], size=int(info.get("size", 0)),
            repo_size=int(repo.get("delta", repo.get("size", 0))),
            started=int(b["timestamp"]["start"]), stopped=int(b["timestamp"]["stop"]),
            wal_start=str(b.get("archive", {}).get("start")),
            wal_stop=str(b.get("archive", {}).get("stop"))))
    return status, entries


def system_id_of_info(text: str) -> int | None:
    """The database system id the stanza was created for (None without a stanza)."""
    data: list[dict[str, Any]] = json.loads(text)
    dbs = data[0].get("db", []) if data else []
    return int(dbs[-1]["system-id"]) if dbs else None


# A worker's line naming a repository file it found wrong, e.g.
#   P01   INFO: invalid checksum '20261207-201212F/pg_data/base/1/2838.lz4'
_PROBLEM = re.compile(
    r"P(?!00)\d+ +(?:INFO|WARN|ERROR|DETAIL): +(?P<what>[^'\n]+?) +'(?P<file>[^'\n]+)'")
_BACKUP = re.compile(r"backup: (?P<label>\S+), status: (?P<status>\w+)")


@dataclass(frozen=True)
class VerifyReport:
    """What `pgbackrest verify` found. Its exit code is 0 even when it finds corruption
    (2.45): its report is what counts."""

    status: str  # "ok" or "error"
    backups: dict[str, str] = field(default_factory=dict)  # label -> valid / invalid...
    problems: list[tuple[str, str]] = field(default_factory=list)  # (what, repository file)
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok" and not self.problems and all(
            s == "valid" for s in self.backups.values())

    def names(self, repo_file: str) -> list[str]:
        """The problems reported on `repo_file` (a path relative to the stanza's backups)."""
        return [what for what, f in self.problems if f == repo_file]


def parse_verify(text: str) -> VerifyReport:
    """Parse `pgbackrest verify --output=text --verbose --log-level-console=info`: the
    summary, and each bad file from the workers' log lines."""
    status = re.search(r"status: (\w+)", text)
    backups = {m["label"]: m["status"] for m in _BACKUP.finditer(text)}
    problems = [(m["what"], m["file"]) for m in _PROBLEM.finditer(text)]
    return VerifyReport(status=status.group(1) if status else "unknown", backups=backups,
                        problems=problems, output=text[-4000:])


def flip_bytes(data: bytes, offset: int, count: int) -> bytes:
    """`data` with `count` bytes from `offset` inverted: a silent corruption of the kind a
    failing disk or a bad copy leaves, same size, same name."""
    if offset < 0 or offset + count > len(data):
        raise ValueError(f"cannot flip {count} bytes at {offset} of {len(data)}")
    middle = bytes(b ^ 0xFF for b in data[offset:offset + count])
    return data[:offset] + middle + data[offset + count:]

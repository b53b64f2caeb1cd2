"""Network faults on the local target, where every member listens on 127.0.0.1.

Every process drill starts joins a cgroup (v2) of its own member before it execs
(`drill-<stack>/<member>`), so each socket it opens carries that member; so do the
processes it forks (PostgreSQL under Patroni). nftables then knows both ends of every
loopback packet: the sender, from the sending socket's cgroup on output (marked there,
the mark travels with the packet), and the receiver, from the receiving socket's cgroup
looked up on input. A rule "mark A, receiving socket in B: drop" cuts A -> B on every
connection, whichever side opened it and whether it existed before, and touches nothing
else on the machine. The workload and drill's own probes run in no member's cgroup: they
are the `clients`.

Why not a proxy in front of each member (Toxiproxy): one proxy per destination cannot cut
A -> B while C -> B flows, and per-pair proxies would need every server to announce a
different address to each peer. Why not a network namespace per member: every server and
client would move off 127.0.0.1. This kernel has no netem qdisc, so latency is not offered.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import zlib
from contextlib import suppress
from pathlib import Path
from typing import Literal

from drillrunner.core.errors import ActionFailed
from drillrunner.targets.network import CLIENTS, Drop

MARK_BASE = 0x0D000000  # packet marks drill sets: MARK_BASE | a hash of the member's name


def mark_of(member: str) -> int:
    """The member's packet mark: from its name alone, so a rule in force keeps meaning the
    same member when others start or stop (an index into the member list would shift)."""
    return MARK_BASE | (zlib.crc32(member.encode()) & 0xFFFF)
NFT = ("nft", "/usr/sbin/nft")
INSTALL = "network faults need nftables (apt-get install nftables) and a cgroup v2 hierarchy"


def cgroup2_mount(mounts: str | None = None) -> Path | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or .../unified on a hybrid
    machine), from /proc/self/mounts."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text()
        except OSError:
            return None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


class Cgroups:
    """The stack's cgroups: one per member, under a folder named after the state folder."""

    def __init__(self, state: Path, mount: Path | Literal["detect"] | None = "detect") -> None:
        self.mount = cgroup2_mount() if mount == "detect" else mount
        digest = hashlib.sha1(str(state.resolve()).encode()).hexdigest()[:10]
        self.name = f"drill-{digest}"

    @property
    def base(self) -> Path | None:
        return self.mount / self.name if self.mount is not None else None

    def problem(self) -> str | None:
        if self.mount is None:
            return "no cgroup v2 hierarchy is mounted"
        if not os.access(self.mount, os.W_OK):
            return f"cannot create cgroups under {self.mount} (not root?)"
        return None

    def ensure(self, member: str) -> Path | None:
        """The member's cgroup, created if missing; None where cgroups cannot be made."""
        if self.problem() is not None or self.base is None:
            return None
        path = self.base / member
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        return path

    def members(self) -> list[str]:
        """Members that have a cgroup, in a stable order (their marks follow it)."""
        if self.base is None or not self.base.is_dir():
            return []
        return sorted(p.name for p in self.base.iterdir() if p.is_dir())

    def pids(self, member: str) -> list[int]:
        if self.base is None:
            return []
        try:
            text = (self.base / member / "cgroup.procs").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def release(self, member: str) -> None:
        """Remove the member's cgroup once no process is left in it, and the stack's folder
        once no member's is left (a stopped stack leaves nothing under the hierarchy)."""
        if self.base is None:
            return
        with suppress(OSError):
            (self.base / member).rmdir()  # EBUSY while a process is still in it
        with suppress(OSError):
            self.base.rmdir()

    def remove_empty(self) -> None:
        """Remove member cgroups no process is in (after `drill stack down`)."""
        if self.base is None:
            return
        for member in self.members():
            if not self.pids(member):
                with suppress(OSError):
                    (self.base / member).rmdir()
        with suppress(OSError):
            self.base.rmdir()

    def wrap(self, member: str, argv: list[str], user: str | None) -> list[str] | None:
        """`argv` started inside the member's cgroup (joined before exec, as root, then
        privileges dropped to `user` with setpriv), or None where that cannot be done."""
        path = self.ensure(member)
        setpriv = shutil.which("setpriv")
        if path is None or (user is not None and setpriv is None):
            return None
        drop: list[str] = []
        if user is not None and setpriv is not None:
            pw = pwd.getpwnam(user)
            drop = [setpriv, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                    "--init-groups", "--"]
        return ["/bin/sh", "-c", 'echo 0 > "$0" && exec "$@"', str(path / "cgroup.procs"),
                *drop, *argv]


def _nft_action(how: Drop) -> str:
    if how.bytes_per_second is not None:
        return f"limit rate over {how.bytes_per_second} bytes/second drop"
    if how.percent >= 100:
        return "drop"
    return f"numgen random mod 100 < {how.percent} drop"


def rule(base: str, src: str, dst: str, how: Drop, tag: str) -> str:
    """One nft rule of the cuts chain: packets from `src` to `dst` (member names or
    CLIENTS) get `how`. Pure: the tests read what it renders."""
    if src == dst:
        raise ValueError(f"a cut from {src} to itself")
    sender = ("meta mark 0" if src == CLIENTS
              else f"meta mark {mark_of(src):#x}")
    receiver = (f'socket cgroupv2 level 1 != "{base}"' if dst == CLIENTS
                else f'socket cgroupv2 level 2 "{base}/{dst}"')
    return f'{sender} {receiver} {_nft_action(how)} comment "{tag} {src}->{dst} {how.describe()}"'


class NetCuts:
    """The stack's nftables table: chain `senders` labels each packet with its sender
    member, chain `cuts` drops what the faults in force forbid (each rule tagged)."""

    def __init__(self, cgroups: Cgroups) -> None:
        self.cgroups = cgroups
        self.table = cgroups.name.replace("-", "_")

    def problem(self) -> str | None:
        why = self.cgroups.problem()
        if why is None and self._binary() is None:
            why = "nft not found"
        return f"{INSTALL}: {why}" if why else None

    def _binary(self) -> str | None:
        for name in NFT:
            found = shutil.which(name) or (name if os.access(name, os.X_OK) else None)
            if found:
                return found
        return None

    def _run(self, script: str | None, *args: str) -> str:
        nft = self._binary()
        if nft is None or self.cgroups.mount is None:
            raise ActionFailed(self.problem() or INSTALL)
        argv = [nft, *(["-f", "-"] if script is not None else list(args))]
        if self.cgroups.mount != Path("/sys/fs/cgroup"):
            # nft resolves cgroup paths under /sys/fs/cgroup: show it the v2 hierarchy there,
            # in a mount namespace of nft's own.
            argv = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /sys/fs/cgroup && exec "$@"',
                    str(self.cgroups.mount), *argv]
        done = subprocess.run(argv, input=script, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise ActionFailed(f"nft failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def _exists(self) -> bool:
        try:
            return f"table inet {self.table}" in self._run(None, "list", "tables")
        except ActionFailed:
            return False

    def _mark_rules(self, members: list[str]) -> str:
        return "\n".join(
            f'  socket cgroupv2 level 2 "{self.cgroups.name}/{m}" '
            f"meta mark set {mark_of(m):#x}" for m in members)

    def apply(self, tag: str, pairs: list[tuple[str, str]], how: Drop) -> list[str]:
        """Add one rule per (sender, receiver) pair, tagged `tag`; returns the rules."""
        if (why := self.problem()) is not None:
            raise ActionFailed(why)
        members = self.cgroups.members()
        missing = sorted({m for p in pairs for m in p} - {CLIENTS} - set(members))
        if missing:
            raise ActionFailed(
                f"{', '.join(missing)} run outside drill's cgroups (started before network "
                "faults existed?): restart them with 'drill stack down' and 'drill stack up'")
        if len({mark_of(m) for m in members}) != len(members):
            raise ActionFailed(f"two of {members} share a packet mark: rename one")
        rules = [rule(self.cgroups.name, s, d, how, tag) for s, d in pairs]
        # The senders chain is rewritten each time: it marks every member that has a cgroup.
        script = "\n".join([
            f"table inet {self.table} {{",
            "  chain senders { type filter hook output priority -150; policy accept; }",
            "  chain cuts { type filter hook input priority 0; policy accept; }",
            "}",
            f"flush chain inet {self.table} senders",
            f"table inet {self.table} {{ chain senders {{",
            self._mark_rules(members),
            "}",
            "}",
            *(f"add rule inet {self.table} cuts {r}" for r in rules),
        ])
        self._run(script)
        return rules

    def remove(self, tag: str | None) -> int:
        """Delete the rules tagged `tag` (None: every rule); returns how many (0 when none:
        idempotent)."""
        handles = [h for c, h in self._rules() if tag is None or c.split(" ", 1)[0] == tag]
        if handles:
            self._run("\n".join(f"delete rule inet {self.table} cuts handle {h}"
                                for h in handles))
        return len(handles)

    def _rules(self) -> list[tuple[str, int]]:
        if not self._exists():
            return []
        out = self._run(None, "-a", "list", "chain", "inet", self.table, "cuts")
        found = []
        for line in out.splitlines():
            if 'comment "' in line and "# handle " in line:
                comment = line.split('comment "', 1)[1].split('"', 1)[0]
                found.append((comment, int(line.rsplit("# handle ", 1)[1])))
        return found

    def active(self) -> list[str]:
        """The rules in force ("<tag> <sender>-><receiver> <how>"), oldest first."""
        return [c for c, _ in self._rules()]

    def teardown(self) -> None:
        if self._exists():
            self._run(None, "delete", "table", "inet", self.table)

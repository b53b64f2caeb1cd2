"""pgBackRest on kind (BacksUpWithPgBackRest, part of KindPostgresOps).

The manifests (deploy/k8s/timescaledb) give every member a repository on its own
`pgbackrest` PVC (REPO), stanza `timescaledb`, configuration from the ConfigMap
timescaledb-patroni (PGBR_CONFIG, pg1 = the pod's own PostgreSQL); the leader's
archive_command pushes its WAL there. So every command runs through exec in the leader's
pod, against the leader's repository: a backup reads the data files it names as pg1.
After a failover the new leader's repository holds what it archived since its promotion;
the CronJob (backup.yaml) backs it up on its next run.

The point-in-time restore goes into the same temporary pod as the pg_basebackup path
(`timescaledb-pitr-0`, kind_pitr.py), here with the leader's repository claim mounted
read-only (on the leader's node: the claim is ReadWriteOnce) and the same
configuration: `pgbackrest restore --type=time` fills its data volume before the gate
opens, and its restore_command fetches WAL with `pgbackrest archive-get`. The restored
copy archives nothing (archive_mode=off): a promoted copy must never push its timeline
into the cluster's repository.
"""

from __future__ import annotations

import base64
import re
import shlex
import time
from pathlib import Path
from typing import Any

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.services.timescaledb import pgbackrest as pgbr
from drillrunner.services.timescaledb.kind_members import (
    CONFIGMAP,
    PGDATA,
    PITR,
    PITR_GATE,
    REPO,
    STANZA,
    patroni_role,
)
from drillrunner.services.timescaledb.kind_pitr import KindPostgresPitr, pitr_pod
from drillrunner.targets.base import MemberRef

PGBR_CONFIG_DIR = "/etc/pgbackrest"
PGBR_CONFIG = f"{PGBR_CONFIG_DIR}/pgbackrest.conf"  # PGBACKREST_CONFIG of the StatefulSet
REPO_VOLUME = "pgbackrest"  # the StatefulSet's claim template: claims pgbackrest-<pod>
BACKUPS = f"{REPO}/backup/{STANZA}"  # one folder per backup label
# pgBackRest's labels: <full>F, or <full>F_<stamp>D|I for a diff or incr backup.
LABEL = re.compile(r"\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?")
FILE = re.compile(r"[0-9A-Za-z_.\-]+(/[0-9A-Za-z_.\-]+)*")
MISSING = 3  # exit code of the file scripts when the file is not in that repository


def pgbackrest_argv(*args: str) -> list[str]:
    """`pgbackrest <args>` with the manifests' configuration and stanza, spelled out (an
    exec gets the container's environment, but the commands say what they use)."""
    return [pgbr.BINARY, f"--config={PGBR_CONFIG}", f"--stanza={STANZA}", *args]


def archive_get_command() -> str:
    """The restore copy's restore_command: WAL from the mounted repository."""
    return shlex.join(pgbackrest_argv("archive-get", "%f")) + ' "%p"'


class KindPgBackRest(KindPostgresPitr):
    """pgBackRest through exec in the leader's pod (see the module docstring)."""

    def backup_repo(self) -> Path:
        """The repository's folder in the leader's pod (its `pgbackrest` PVC)."""
        return Path(REPO)

    def _leader(self) -> MemberRef:
        from drillrunner.services.timescaledb.roles import the_primary

        return the_primary(self.target)

    def _pgbackrest(self, ref: MemberRef, *args: str, timeout: float = 300.0,
             check: bool = True) -> pgbr.Outcome:
        argv = pgbackrest_argv(*args)
        started = time.monotonic()
        try:
            done = self.target.exec(ref, argv, timeout=timeout)
        except ActionFailed as exc:  # no pod, no such binary, or out of time
            raise pgbr.PgBackRestFailed(f"pgbackrest {args[-1]} in {ref.name}: {exc}") from None
        out = pgbr.Outcome(argv, done.returncode, done.stdout, done.stderr,
                           round(time.monotonic() - started, 3))
        if check and out.code != 0:
            raise pgbr.PgBackRestFailed(f"pgbackrest {args[-1]} failed in {ref.name} (exit "
                                        f"{out.code}): {out.text[-1500:]}")
        return out

    # -- the stanza ---------------------------------------------------------------------

    def ensure_stanza(self) -> None:
        self._ensure_stanza(self._leader())

    def _ensure_stanza(self, ref: MemberRef) -> None:
        """Create the stanza (idempotent). A repository made for another cluster (the PVC
        outlived an earlier bootstrap: another system id) is emptied first: its backups
        cannot restore this one, and archive-push refuses to add to it."""
        from drillrunner.services.timescaledb import sql

        info = self._pgbackrest(ref, "info", "--output=json", check=False)
        try:
            recorded = pgbr.system_id_of_info(info.stdout) if info.code == 0 else None
        except (ValueError, LookupError, TypeError):
            recorded = None
        current = int(sql.fetch_value(self.dsn(ref.name),
                                      "SELECT system_identifier FROM pg_control_system()"))
        if recorded is not None and recorded != current:
            self.target.sh(ref, f"rm -rf {REPO}/archive/{STANZA} {BACKUPS}",
                           what=f"emptying the repository of system {recorded}")
        self._pgbackrest(ref, "stanza-create", timeout=60.0)

    # -- backups --------------------------------------------------------------------------

    def pgbackrest_check(self) -> pgbr.Outcome:
        """`pgbackrest check` in the leader's pod: its archive_command reaches the repo."""
        ref = self._leader()
        self._ensure_stanza(ref)
        return self._pgbackrest(ref, "check", timeout=120.0)

    def pgbackrest_backup(self, kind: pgbr.BackupType) -> tuple[pgbr.BackupEntry, float]:
        """A backup of the leader into its repository; its entry in `pgbackrest info` and
        how long the command took."""
        ref = self._leader()
        self._ensure_stanza(ref)
        done = self._pgbackrest(ref, f"--type={pgbr.BackupType(kind).value}", "backup",
                         timeout=600.0)
        _, entries = self._info(ref)
        if not entries:
            raise StackError(f"pgbackrest backup reported no backup: {done.text[-500:]}")
        return entries[-1], done.seconds

    def pgbackrest_info(self) -> tuple[str, list[pgbr.BackupEntry]]:
        return self._info(self._leader())

    def _info(self, ref: MemberRef) -> tuple[str, list[pgbr.BackupEntry]]:
        out = self._pgbackrest(ref, "info", "--output=json")
        try:
            return pgbr.parse_info(out.stdout)
        except (ValueError, LookupError, TypeError) as exc:
            raise pgbr.PgBackRestFailed(f"pgbackrest info in {ref.name}: unreadable JSON "
                                        f"({exc}): {out.text[-500:]}") from None

    def pgbackrest_verify(self) -> pgbr.VerifyReport:
        # The summary (--output=text --verbose) and, in the log lines, each bad file.
        ref = self._leader()
        out = self._pgbackrest(ref, "--output=text", "--verbose", "--log-level-console=info",
                        "verify", timeout=300.0, check=False)
        report = pgbr.parse_verify(out.text)
        if out.code != 0 and report.status == "unknown":
            raise pgbr.PgBackRestFailed(f"pgbackrest verify failed in {ref.name} (exit "
                                        f"{out.code}): {out.text[-1500:]}")
        return report

    # -- the restore into timescaledb-pitr-0 ----------------------------------------------

    def pgbackrest_restore(self, target_time: str, label: str | None = None) -> MemberRef:
        """Replace any earlier copy with a fresh, gated pod that mounts the leader's
        repository, `pgbackrest restore --type=time` into it (the latest backup, or
        `label`), open the gate and return once it is Ready (consistent; recovery goes on
        up to `target_time`, then the copy promotes itself)."""
        if label is not None and not LABEL.fullmatch(label):
            raise ActionFailed(f"{label!r} is not a pgBackRest backup label")
        leader = self._leader()
        pod = self.target.pod(leader.name)
        if pod is None:
            raise ActionFailed(f"{leader.name}: no such pod in namespace "
                               f"{self.target.namespace}")
        self.remove_member(PITR)
        body = restore_pod(self.target.namespace, pod.image, target_time, leader.name,
                           pod.node)
        ref = self._create_restore_pod(body)
        self._staged = None  # no pg_basebackup copy in this pod
        self.target.sh(ref, restore_script(target_time, label), timeout=600.0,
                       what=f"pgbackrest restore from {leader.name}'s repository into {PITR}")
        self._wait_restore_ready(ref)
        return ref

    # -- repository files (the corruption fault and its undo) -----------------------------

    def _repo_holders(self) -> list[MemberRef]:
        """The standing members whose pod runs, Patroni's leader first: a file named in an
        undo may sit in a former leader's repository."""
        labels = self._pod_labels()
        up = [m for m in self.members() if m.name in labels and
              (p := self.target.pod(m.name)) is not None and p.containers_running]
        return sorted(up, key=lambda m: patroni_role(labels[m.name][0]) != "primary")

    def backup_files(self, label: str) -> dict[str, int]:
        if not LABEL.fullmatch(label):
            raise ActionFailed(f"{label!r} is not a pgBackRest backup label")
        base = f"{label}/pg_data/base"
        script = (f"cd {BACKUPS} 2>/dev/null && [ -d {base} ] || exit 0\n"
                  f"find {base} -type f -printf '%s %p\\n'")
        out = self.target.sh(self._leader(), script, what=f"listing backup {label}")
        files: dict[str, int] = {}
        for line in out.splitlines():
            size, _, path = line.partition(" ")
            if size.isdigit() and FILE.fullmatch(path):
                files[path] = int(size)
        return files

    def read_backup_bytes(self, file: str, offset: int, length: int) -> bytes | None:
        path = _repo_file(file)
        script = (f"[ -f {path} ] || exit {MISSING}\n"
                  f"tail -c +{int(offset) + 1} {path} | head -c {int(length)} | base64")
        out = self._on_holder(script, f"reading {file}")
        return None if out is None else base64.b64decode("".join(out.split()))

    def write_backup_bytes(self, file: str, offset: int, data: bytes) -> None:
        path = _repo_file(file)
        script = (f"[ -f {path} ] || exit {MISSING}\n"
                  f"printf %s {base64.b64encode(data).decode()} | base64 -d | "
                  f"dd of={path} bs=1 seek={int(offset)} conv=notrunc status=none")
        if self._on_holder(script, f"writing {file}") is None:
            raise ActionFailed(f"{file} is in no member's repository")

    def _on_holder(self, script: str, what: str) -> str | None:
        """Run `script` in the first pod whose repository holds the file (it exits
        MISSING elsewhere); its stdout, or None if no repository has the file."""
        for ref in self._repo_holders():
            done = self.target.exec(ref, ["sh", "-c", script], timeout=120.0)
            if done.returncode == MISSING:
                continue
            if done.returncode != 0:
                raise ActionFailed(f"{ref.name}: {what} failed (exit {done.returncode}): "
                                   f"{(done.stderr.strip() or done.stdout.strip())[-400:]}")
            return done.stdout
        return None


def _repo_file(file: str) -> str:
    """The quoted path in the pod of a file named relative to the stanza's backups."""
    if not FILE.fullmatch(file) or ".." in file.split("/"):
        raise ActionFailed(f"{file!r} is not a file of the stanza's backups")
    return shlex.quote(f"{BACKUPS}/{file}")


def restore_script(target_time: str, label: str | None) -> str:
    """Run in the restore pod before its release: restore into an empty PGDATA (pgBackRest
    writes recovery.signal and the recovery target), then open the gate."""
    restore = pgbackrest_argv(*pgbr.restore_argv(pgbr.Layout(Path(REPO)), Path(PGDATA),
                                                 target_time, label))
    return "\n".join([
        "set -eu",
        f'[ ! -e {PITR_GATE} ] || {{ echo "already released" >&2; exit 1; }}',
        f"rm -rf {PGDATA}",
        f"mkdir -p {PGDATA}",
        f"chmod 700 {PGDATA}",
        shlex.join(restore),
        f"rm -f {PGDATA}/standby.signal {PGDATA}/postmaster.pid {PGDATA}/postmaster.opts",
        f"touch {PITR_GATE}",
    ])


def restore_pod(namespace: str, image: str, target_time: str, source: str,
                node: str | None) -> dict[str, Any]:
    """kind_pitr's restore pod, reading WAL from `source`'s repository claim (mounted
    read-only, with pgBackRest's configuration) on `source`'s node."""
    body = pitr_pod(namespace, image, target_time, restore_command=archive_get_command())
    spec = body["spec"]
    spec["containers"][0]["volumeMounts"] += [
        {"name": REPO_VOLUME, "mountPath": REPO, "readOnly": True},
        {"name": "pgbackrest-config", "mountPath": PGBR_CONFIG_DIR, "readOnly": True}]
    spec["volumes"] += [
        {"name": REPO_VOLUME, "persistentVolumeClaim": {
            "claimName": f"{REPO_VOLUME}-{source}", "readOnly": True}},
        {"name": "pgbackrest-config", "configMap": {
            "name": CONFIGMAP, "items": [{"key": "pgbackrest.conf",
                                          "path": "pgbackrest.conf"}]}}]
    # The repository already belongs to the members' group: no recursive change of it.
    spec["securityContext"]["fsGroupChangePolicy"] = "OnRootMismatch"
    if node:  # a ReadWriteOnce claim is mounted on one node at a time
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}
    body["metadata"]["annotations"] = {"drill.dev/pgbackrest-source": source}
    return body

"""Point-in-time restore of TimescaleDB on kind (part of KindPostgresOps).

The leader archives its WAL into its pgBackRest repository (archive_command in Patroni's
configuration; each member's repository is its own PVC). `base_backup` runs
pg_basebackup (tar, gzip) in the source pod and keeps the files on the host, in the
evidence folder. `restore_pitr` creates a bare pod `timescaledb-pitr-0` (labelled
drill.dev/role=pitr and without Patroni's labels: no Service routes to it, `members()`
and the roles leave it out) whose container waits for a marker before it starts
PostgreSQL, outside Patroni; drill copies the backup and the current primary's archived
segments (fetched with `pgbackrest archive-get`) into it through exec, writes
recovery.signal and releases it. The recovery settings are command-line options of the
pod (they override the postgresql.conf Patroni wrote into the backup, so the copy
archives nothing and waits for no standby). Its data is a generic ephemeral volume (a
PVC deleted with the pod): no data on emptyDir, as the audit wants.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from drillrunner.core.errors import ActionFailed
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.services.timescaledb.kind_members import (
    ARCHIVE,
    BACKUP_FILES,
    BACKUP_STAGE,
    CHUNK,
    DATA,
    INCOMING,
    NAME_LABEL,
    PG_USER,
    PGDATA,
    PITR,
    PITR_CLAIM,
    PITR_GATE,
    PITR_LABEL,
    READY_TIMEOUT,
    REPO,
    SOCKETS,
    STANZA,
    WAL_EXPORT,
    WAL_STAGE,
    KindPostgresMembers,
)
from drillrunner.services.timescaledb.ops import SERVICE
from drillrunner.targets.base import MemberRef
from drillrunner.targets.kind.apis import http_status


class KindPostgresPitr(KindPostgresMembers):
    """Base backups and the restore copy `timescaledb-pitr-0` (see the module docstring)."""


    def base_backup(self, source: str, dest: Path) -> Path:
        """pg_basebackup (tar, gzip, WAL streamed) in the source pod as `replicator` over
        127.0.0.1 (pg_hba's `local all` does not match replication connections), its files
        copied into `dest` on the host. The archived WAL stays in pgBackRest's repository,
        whose retention (repo1-retention-full) expires it with its own backups."""
        if source == PITR:
            raise ActionFailed(f"refusing to back up {PITR}: it is a temporary restore copy")
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise ActionFailed(f"backup folder {dest} is not empty")
        ref = self._ref(source)
        if not self.target.is_running(ref):
            raise ActionFailed(f"{source} is not running: cannot take a base backup of it")
        self.target.sh(ref, backup_script(), timeout=900.0,
                       what=f"pg_basebackup of {source}")
        try:
            for name in (*BACKUP_FILES, "backup_manifest"):
                data = self.target.read_file(ref, f"{BACKUP_STAGE}/{name}", timeout=600.0)
                (dest / name).write_bytes(data)
        finally:
            self.target.sh(ref, f"rm -rf {BACKUP_STAGE}", what=f"removing {BACKUP_STAGE}")
        start_segment(dest / "base.tar.gz")  # refuses a backup without its start
        return dest

    def pitr_member(self) -> MemberRef:
        """The restore copy's address once restore_pitr found it, else its name only."""
        return self._refs.get(PITR) or MemberRef(service=SERVICE, name=PITR,
                                                 host="127.0.0.1", port=5432)

    def stage_restore(self, backup: Path, target_time: str) -> None:
        """Replace any earlier copy with a fresh, gated pod recovering to `target_time` and
        upload the base backup into it (base64 over exec: drill's own transfer, which the
        driver does not time)."""
        missing = [n for n in BACKUP_FILES if not (backup / n).is_file()]
        if missing:
            raise ActionFailed(f"{backup} is not a base backup taken on kind (no "
                               f"{', '.join(missing)})")
        from drillrunner.services.timescaledb.roles import the_primary

        image = self._image(the_primary(self.target).name)
        self.remove_member(PITR)
        ns = self.target.namespace
        ref = self._create_restore_pod(pitr_pod(ns, image, target_time))
        self.target.sh(ref, f"mkdir -p {INCOMING}", what=f"creating {INCOMING}")
        for name in BACKUP_FILES:
            self.target.write_file(ref, f"{INCOMING}/{name}", (backup / name).read_bytes(),
                                   chunk=CHUNK, timeout=300.0)
        self._staged = (backup, target_time)

    def restore_pitr(self, backup: Path, target_time: str) -> MemberRef:
        """Load the current primary's archived segments from the backup's start on into
        the staged copy (staging it first if needed), set the recovery target, release
        it and return once it is Ready (consistent; recovery then goes on up to
        `target_time`, and the copy promotes itself)."""
        from drillrunner.services.timescaledb.roles import the_primary

        if self._staged != (backup, target_time) or not self.target.pod_exists(PITR):
            self.stage_restore(backup, target_time)
        start = start_segment(backup / "base.tar.gz")
        segments = self._export_wal(the_primary(self.target), start)
        ref = self._container_up(PITR)
        self.target.write_file(ref, f"{INCOMING}/wal-archive.tar.gz", segments, chunk=CHUNK,
                               timeout=300.0)
        self.target.sh(ref, restore_script(), timeout=600.0,
                       what=f"unpacking the backup and the archived WAL into {PITR}")
        self._staged = None
        self._wait_restore_ready(ref)
        return ref

    def _export_wal(self, primary: MemberRef, start: str) -> bytes:
        """The primary's archived segments from `start` on (every timeline) and the
        timeline history files, as a gzipped tar."""
        out = self.target.sh(primary, export_wal_script(start), timeout=600.0,
                             what=f"packing {primary.name}'s archived WAL from {start} on")
        import base64

        return base64.b64decode("".join(out.split()))

    def _image(self, member: str) -> str:
        pod = self.target.pod(member)
        if pod is None:
            raise ActionFailed(f"{member}: no such pod in namespace {self.target.namespace}")
        return pod.image

    def _wait_restore_ready(self, ref: MemberRef) -> None:
        def ready() -> bool:
            pod = self.target.pod(PITR)
            if pod is None or pod.deleting:
                raise ActionFailed(f"{PITR}: the pod went away during the restore")
            phase = pod.phase
            if phase in ("Failed", "Succeeded"):
                raise ActionFailed(f"{PITR}: PostgreSQL exited during recovery (pod "
                                   f"{phase}):\n{self._log(ref)}")
            return pod.ready

        try:
            poll_until(ready, timeout=READY_TIMEOUT, interval=0.2,
                       what=f"{PITR} to accept connections")
        except WaitTimeout:
            raise ActionFailed(f"{PITR}: not Ready {READY_TIMEOUT:g}s after its release "
                               f"(recovery not consistent yet?):\n{self._log(ref)}") from None

    def _log(self, ref: MemberRef) -> str:
        try:
            return self.target.log_tail(ref, 15)
        except Exception as exc:  # the reason matters more than the log
            return f"(no log: {type(exc).__name__})"

    def _create_restore_pod(self, body: Any) -> MemberRef:
        """Create the restore pod `body` and return once its container runs."""
        try:
            self.target.apis.core.create_namespaced_pod(self.target.namespace, body)
        except Exception as exc:
            if http_status(exc) is None:
                raise
            raise ActionFailed(f"{PITR}: cannot create the pod: "
                               f"{getattr(exc, 'reason', exc)}") from None
        return self._container_up(PITR)

    def remove_member(self, member: str) -> bool:
        """Delete the restore pod (grace 0; its ephemeral volume goes with it) and wait
        until it is gone. False if there was none. Idempotent (the undo, and `drill
        recover` after a crash)."""
        if member != PITR:
            raise ActionFailed(f"{member} is not a temporary member; only {PITR} can be "
                               "removed")
        self._refs.pop(PITR, None)  # a new pod may get a new address
        if not self.target.pod_exists(PITR):
            return False
        try:
            self.target.apis.core.delete_namespaced_pod(PITR, self.target.namespace,
                                                        grace_period_seconds=0)
        except Exception as exc:
            if http_status(exc) != 404:
                raise
        try:
            poll_until(lambda: not self.target.pod_exists(PITR), timeout=READY_TIMEOUT,
                       interval=0.2, what=f"pod {PITR} to be deleted")
        except WaitTimeout:
            raise ActionFailed(f"{PITR}: still there {READY_TIMEOUT:g}s after its "
                               "deletion") from None
        # Its ephemeral claim goes after the pod; a new copy of the same name cannot get a
        # claim until the old one is gone.
        try:
            poll_until(self._claim_gone, timeout=READY_TIMEOUT, interval=0.2,
                       what=f"claim {PITR_CLAIM} to be deleted")
        except WaitTimeout:
            raise ActionFailed(f"{PITR}: its claim {PITR_CLAIM} is still there "
                               f"{READY_TIMEOUT:g}s after the pod") from None
        return True

    def _claim_gone(self) -> bool:
        try:
            self.target.apis.core.read_namespaced_persistent_volume_claim(
                PITR_CLAIM, self.target.namespace)
        except Exception as exc:
            if http_status(exc) == 404:
                return True
            raise
        return False


# -- point-in-time restore: scripts run in the pods and the restore pod ----------------

def backup_script() -> str:
    """Run in the source pod: refuse without an archive, then pg_basebackup into
    BACKUP_STAGE. The replication password stays in the container's environment."""
    return "\n".join([
        "set -eu",
        f'mode=$(psql -h {SOCKETS} -U {PG_USER} -XAtc "SHOW archive_mode")',
        '[ "$mode" != off ] || { echo "archive_mode is off: no WAL archive to restore '
        'from (Patroni\'s parameters: patronictl edit-config, then a restart)" >&2; '
        "exit 1; }",
        'export PGPASSWORD="${PATRONI_REPLICATION_PASSWORD:-}"',
        f"rm -rf {BACKUP_STAGE}",
        f"pg_basebackup -h 127.0.0.1 -U replicator -w -D {BACKUP_STAGE} -Ft -z -X stream "
        "-c fast -l drill-pitr",
    ])


def export_wal_script(start: str) -> str:
    """Run in the primary's pod: the segments of its pgBackRest repository from `start`'s
    position on (any timeline) and every history file, fetched with `pgbackrest
    archive-get` (which decompresses and checks them), as a gzipped tar, base64 on
    stdout."""
    if not re.fullmatch(r"[0-9A-F]{24}", start):
        raise ActionFailed(f"{start!r} is not a WAL segment name")
    root = f"{REPO}/archive/{STANZA}"
    return "\n".join([
        "set -eu",
        f"trap 'rm -rf {WAL_STAGE} {WAL_EXPORT}' EXIT",
        f'[ -d {root} ] || {{ echo "no pgBackRest WAL archive ({root}): is archive_mode '
        'on, and has this member archived as the leader?" >&2; exit 1; }',
        # Repository files are <segment>-<sha1>[.gz|.lz4|...] and <timeline>.history.
        f"names=$(find {root} -type f | sed 's|.*/||' | awk -v s={start} '"
        "/^[0-9A-F]+[.]history$/ {print; next} "
        "substr($0, 25, 1) == \"-\" && substr($0, 1, 24) !~ /[^0-9A-F]/ "
        "&& substr($0, 9, 16) >= substr(s, 9) {print substr($0, 1, 24)}' | sort -u)",
        f'[ -n "$names" ] || {{ echo "no archived WAL segment from {start} on" >&2; '
        "exit 1; }",
        f"rm -rf {WAL_STAGE}",
        f"mkdir -p {WAL_STAGE}",
        f'for n in $names; do pgbackrest --stanza={STANZA} archive-get "$n" '
        f'"{WAL_STAGE}/$n"; done',
        f"tar -czf {WAL_EXPORT} -C {WAL_STAGE} .",
        f"base64 < {WAL_EXPORT}",
    ])


def restore_script() -> str:
    """Run in the restore pod, before its release: unpack the backup and the segments,
    ask for a targeted recovery (recovery.signal), then open the gate."""
    return "\n".join([
        "set -eu",
        f'[ ! -e {PITR_GATE} ] || {{ echo "already released" >&2; exit 1; }}',
        f"rm -rf {PGDATA} {ARCHIVE}",
        f"mkdir -p {PGDATA} {ARCHIVE}",
        f"chmod 700 {PGDATA}",
        f"tar -xzf {INCOMING}/base.tar.gz -C {PGDATA}",
        f"mkdir -p {PGDATA}/pg_wal",
        f"tar -xzf {INCOMING}/pg_wal.tar.gz -C {PGDATA}/pg_wal",
        f"tar -xzf {INCOMING}/wal-archive.tar.gz -C {ARCHIVE}",
        f"rm -f {PGDATA}/standby.signal {PGDATA}/postmaster.pid {PGDATA}/postmaster.opts",
        f"touch {PGDATA}/recovery.signal",
        f"rm -rf {INCOMING}",
        f"touch {PITR_GATE}",
    ])


# The restore container: wait for the gate, then PostgreSQL itself (outside Patroni: the
# copy is no member of the cluster).
GATE_COMMAND = (f"trap 'exit 0' TERM INT\n"
                f"until [ -e {PITR_GATE} ]; do sleep 0.5; done\n"
                'exec postgres "$@"\n')


def start_segment(base_tar: Path) -> str:
    """The WAL segment a base backup starts in (its backup_label)."""
    import tarfile

    try:
        with tarfile.open(base_tar, "r:gz") as tar:
            member = tar.extractfile("backup_label")
            text = member.read().decode() if member is not None else ""
    except (OSError, KeyError, tarfile.TarError) as exc:
        raise ActionFailed(f"{base_tar}: no readable backup_label ({exc})") from None
    found = re.search(r"^START WAL LOCATION: .*\(file ([0-9A-F]{24})\)", text, re.M)
    if found is None:
        raise ActionFailed(f"{base_tar}: backup_label names no start segment")
    return found.group(1)


def pitr_pod(namespace: str, image: str, target_time: str,
             restore_command: str = f"cp {ARCHIVE}/%f %p") -> dict[str, Any]:
    """The restore pod: the members' image, user, resources and probes; a bare pod (no
    controller: drill deletes it) with restartPolicy Never, so a failed recovery shows
    as a Failed pod instead of a crash loop. Readiness is probed every second: it ends
    restore_pitr's wait, which the RTO includes. WAL comes from the copied archive
    unless `restore_command` fetches it elsewhere (pgBackRest: kind_backup.py)."""
    labels = {NAME_LABEL: SERVICE, "app.kubernetes.io/part-of": "drill-stack",
              "app.kubernetes.io/managed-by": "drill",
              # Not "server": Feast and the OMS build their DSNs from the server pods.
              "drill.dev/member-kind": "restore", PITR_LABEL: "pitr"}
    ready = ["pg_isready", "-U", PG_USER, "-h", "127.0.0.1"]
    args = ["-D", PGDATA,
            # Overrides of the postgresql.conf Patroni wrote into the backup: a copy
            # archives nothing, waits for no standby and streams from no one.
            "-c", "archive_mode=off", "-c", "synchronous_standby_names=",
            "-c", "primary_conninfo=",
            "-c", f"cluster_name={PITR}", "-c", "listen_addresses=*", "-c", "port=5432",
            "-c", f"unix_socket_directories={SOCKETS}",
            "-c", "shared_preload_libraries=timescaledb",
            "-c", f"restore_command={restore_command}",
            "-c", f"recovery_target_time={target_time}",
            "-c", "recovery_target_action=promote"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": PITR, "namespace": namespace, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            # The postmaster is not PID 1: orphans re-parented to it (a probe's pg_isready
            # whose shell timed out) would look like crashed backends and restart it.
            "shareProcessNamespace": True,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                "fsGroup": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": SERVICE,
                "image": image,
                "command": ["sh", "-c", GATE_COMMAND, "sh"],
                "args": args,
                "ports": [{"name": "postgres", "containerPort": 5432}],
                "env": [{"name": "PGDATA", "value": PGDATA}],
                "readinessProbe": {"exec": {"command": ready}, "periodSeconds": 1,
                                   "failureThreshold": 3},
                # Alive while gated, and while starting up or recovering (exit 1).
                "livenessProbe": {
                    "exec": {"command": ["sh", "-c", f"test ! -e {PITR_GATE} || "
                                         f"{{ {' '.join(ready)} -q; [ $? -le 1 ]; }}"]},
                    "initialDelaySeconds": 30, "periodSeconds": 10, "failureThreshold": 6},
                "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                              "limits": {"memory": "1Gi"}},
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "data", "mountPath": DATA},
                                 {"name": "run", "mountPath": SOCKETS}],
            }],
            "volumes": [
                # A PVC created and deleted with the pod (generic ephemeral volume).
                {"name": "data", "ephemeral": {"volumeClaimTemplate": {
                    "metadata": {"labels": {NAME_LABEL: SERVICE,
                                            "app.kubernetes.io/part-of": "drill-stack"}},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "2Gi"}}}}}},
                {"name": "run", "emptyDir": {}},  # the unix socket only
            ],
        },
    }

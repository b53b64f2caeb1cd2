"""PostgresOps on kind: the TimescaleDB members as the pods of deploy/k8s/timescaledb.

Members: `timescaledb-primary-0` and `timescaledb-replica-0` (StatefulSets named after the
role each was CREATED with; live roles always come from `pg_is_in_recovery()`).

How the local semantics map onto pods, and why:

* Kept down until the rollback. A deleted pod is recreated at once by its StatefulSet, and
  scaling the StatefulSet to 0 would drop the member from `target.members()` (which the
  undo needs to find it). So the container's command waits while the file `HOLD` exists on
  the member's PVC before it starts PostgreSQL: `kill` writes it and deletes the pod (grace
  0 for KILL; a fast shutdown then a graceful delete for TERM); the new pod stays NotReady
  (no postgres) until `start_member` or `rebuild_replica` removes the file.
* Pause. `kill -STOP -1` run by the postgres user in the pod freezes every process of that
  user except the caller and the PID namespace's init, which ignores signals it has no
  handler for (kill(2); the kernel skips "init" of the caller's namespace). The manifests
  set `shareProcessNamespace: true`, so init is the pod's pause process and the postmaster
  is frozen too (otherwise it would go on forking fresh backends). A NetworkPolicy is no
  substitute: the drill reaches members through port-forwards, which enter the pod's
  loopback and are not filtered, and the processes would keep running.
* Promotion. The driver promotes with `pg_promote()`; `route_primary` then points the
  Service `timescaledb-primary` (what Feast and the OMS use) at the promoted pod by its
  `statefulset.kubernetes.io/pod-name` label, and back to the manifest's own selector
  whenever timescaledb-primary-0 is the primary. Pod labels are left alone: `drill.dev/role`
  is in the StatefulSets' selectors. Like the local target, a failover drill leaves the
  roles swapped (heal rebuilds the old primary as a replica); the Service follows.
* Synchronous replication. config_file is the read-only ConfigMap, so
  synchronous_standby_names is changed with ALTER SYSTEM (postgresql.auto.conf in PGDATA,
  read after config_file). A clone would inherit it: rebuild_replica deletes it from the
  clone.
* Point-in-time restore. Each member archives its WAL to `wal-archive` on its own PVC
  (archive_mode in the ConfigMap; ReadWriteOnce volumes share nothing). `base_backup` runs
  pg_basebackup (tar, gzip) in the source pod and keeps the files on the host, in the
  evidence folder. `restore_pitr` creates a bare pod `timescaledb-pitr-0` (labelled
  drill.dev/role=pitr: no Service routes to it, `members()` and the roles leave it out)
  whose container waits for a marker before it starts PostgreSQL; drill copies the backup
  and the current primary's archived segments into it through exec, writes
  recovery.signal and releases it. The recovery settings are command-line options of the
  pod (they override the ConfigMap, so the copy archives nothing and waits for no
  standby). Its data is a generic ephemeral volume (a PVC deleted with the pod): no data
  on emptyDir, as the audit wants.

Passwords come from the Secret the pods use and only ever go into libpq connection
strings (never a log, a message or an argv: pg_basebackup in the pod reads it from the
container's environment).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drillrunner.core.errors import ActionFailed
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.services.timescaledb.ops import SERVICE
from drillrunner.targets.base import MemberRef, Signal
from drillrunner.targets.kind.apis import http_status
from drillrunner.targets.kind.deployments import KindDeployment

if TYPE_CHECKING:
    from drillrunner.targets.kind.target import KindTarget

PRIMARY_POD = "timescaledb-primary-0"  # the pod the manifests' Service selects
PRIMARY_SERVICE = "timescaledb-primary"
HEADLESS = "timescaledb-headless"
SECRET, PASSWORD_KEY = "timescaledb-credentials", "postgres-password"
CONFIGMAP = "timescaledb-config"
PG_USER = "postgres"
PGDATA = "/var/lib/postgresql/data/pgdata"
HOLD = "/var/lib/postgresql/data/drill-hold"  # on the PVC, beside PGDATA (see the manifests)
PITR = "timescaledb-pitr-0"
PITR_CLAIM = f"{PITR}-data"  # the generic ephemeral volume's claim: <pod>-<volume>
DATA = "/var/lib/postgresql/data"  # the data volume's mount point (PVC; pitr: ephemeral PVC)
ARCHIVE = f"{DATA}/wal-archive"  # archive_command's folder (deploy/k8s/timescaledb/configmap)
BACKUP_STAGE = f"{DATA}/drill-backup"  # pg_basebackup's output in the source pod, then removed
WAL_EXPORT = f"{DATA}/drill-wal-export.tar.gz"  # archived segments on their way out
INCOMING = f"{DATA}/drill-incoming"  # the backup and the segments in the pitr pod
PITR_GATE = f"{DATA}/drill-restored"  # the pitr container starts PostgreSQL once it exists
SOCKETS = "/var/run/postgresql"
BACKUP_FILES = ("base.tar.gz", "pg_wal.tar.gz")  # pg_basebackup -Ft -z -X stream
CHUNK = 96 * 1024  # base64 per exec: one argv is at most 128 KiB
NAME_LABEL = "app.kubernetes.io/name"
ROLE_LABEL = "drill.dev/role"
STS_POD_LABEL = "statefulset.kubernetes.io/pod-name"
ORIGINAL_SELECTOR = {NAME_LABEL: SERVICE, ROLE_LABEL: "primary"}
READY_TIMEOUT = 180.0  # a new pod: scheduling, volume attach, crash recovery
QUERY_TIMEOUT = 30.0
STREAM_TIMEOUT = 60.0

# Run by the postgres user through exec: every process of that user in the pod's PID
# namespace but the caller and init (tests/unit/test_kind_postgres.py checks this in a real
# PID namespace). Nothing left to thaw is not an error.
PAUSE_SCRIPT = "kill -STOP -1"
RESUME_SCRIPT = "kill -CONT -1 2>/dev/null || true"

# Exit 1 (with a message) if a postgres process runs in the pod. With the shared process
# namespace /proc shows every process of the pod.
_NO_POSTGRES = (
    'for c in /proc/[0-9]*/comm; do '
    'if [ "$(cat "$c" 2>/dev/null)" = postgres ]; then '
    'echo "a postgres process still runs in this pod" >&2; exit 1; fi; done')


def _quote(value: str) -> str:
    """A libpq conninfo value."""
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _conninfo(**params: str | int) -> str:
    return " ".join(f"{k}={_quote(str(v))}" for k, v in params.items())


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _conf_value(conf: str, key: str) -> str | None:
    """The last value of `key` in a postgresql.conf text, unquoted."""
    found = None
    for line in conf.splitlines():
        name, sep, value = line.split("#", 1)[0].partition("=")
        if sep and name.strip() == key:
            found = value.strip().strip("'")
    return found


class KindPostgresOps(KindDeployment):
    """services/timescaledb/ops.py's PostgresOps (and RoutesPrimary) on the kind pods."""

    def __init__(self, target: KindTarget, service: str) -> None:
        super().__init__(target, service)
        self._password: str | None = None
        self._refs: dict[str, MemberRef] = {}
        self._staged: tuple[Path, str] | None = None  # (backup, target) in the restore pod

    def members(self) -> list[MemberRef]:
        """The standing members: never the temporary restore copy (as on the local
        target), so cluster_dsn, synchronous peers and the preflight ignore it."""
        return [m for m in super().members() if m.name != PITR]

    # -- addresses --------------------------------------------------------------------

    def _ref(self, member: str) -> MemberRef:
        """The member's address (a port-forward that stays valid across pod restarts)."""
        if member not in self._refs:
            self._refs[member] = self.target.member(SERVICE, member)
        return self._refs[member]

    def _secret(self) -> str:
        if self._password is None:
            self._password = self.target.secret_value(SECRET, PASSWORD_KEY)
        return self._password

    def dsn(self, member: str, timeout: float = 2.0) -> str:
        ref = self._ref(member)
        return _conninfo(host=ref.host, port=ref.port, user=PG_USER, password=self._secret(),
                         dbname="postgres", connect_timeout=max(1, round(timeout)))

    def cluster_dsn(self, timeout: float = 1.0) -> str:
        refs = [self._ref(m.name) for m in self.members()]
        return _conninfo(host=",".join(r.host for r in refs),
                         port=",".join(str(r.port) for r in refs), user=PG_USER,
                         password=self._secret(), dbname="postgres",
                         target_session_attrs="read-write",
                         connect_timeout=max(1, round(timeout)))

    # -- pods -------------------------------------------------------------------------

    def _container_up(self, member: str) -> MemberRef:
        """Wait until the member's pod exists and its container runs (held or not)."""
        ref = self._ref(member)

        def up() -> bool:
            pod = self.target._pod(member)
            if pod is None or pod.metadata.deletion_timestamp is not None:
                return False
            if pod.status is None or pod.status.phase != "Running":
                return False
            statuses = pod.status.container_statuses or []
            return all(s.state is not None and s.state.running is not None
                       for s in statuses)

        try:
            poll_until(up, timeout=READY_TIMEOUT, interval=0.5,
                       what=f"pod {member}'s container to run")
        except WaitTimeout:
            why = ("not scheduled, or its image or volume not ready" if member == PITR
                   else "its StatefulSet scaled down, or the pod cannot start")
            raise ActionFailed(f"{member}: no running pod in namespace "
                               f"{self.target.namespace} after {READY_TIMEOUT:g}s "
                               f"({why})") from None
        return ref

    def _marker(self, member: str) -> Path:
        return self.target.state / "timescaledb" / f"paused-{member}"

    def _wait_queries(self, member: str) -> None:
        import psycopg

        from drillrunner.services.timescaledb import sql

        poll_until(lambda: sql.fetch(self.dsn(member), "SELECT 1") == [(1,)],
                   timeout=QUERY_TIMEOUT, interval=0.2, what=f"{member} to accept queries",
                   retry_on=(psycopg.Error,))

    # -- process faults ---------------------------------------------------------------

    def is_paused(self, member: str) -> bool:
        """Paused by `pause` in THIS pod (a recreated pod runs new processes)."""
        marker = self._marker(member)
        if not marker.exists():
            return False
        pod = self.target._pod(member)
        return pod is not None and pod.metadata.uid == marker.read_text().strip()

    def pause(self, member: str) -> None:
        ref = self._ref(member)
        pod = self.target._pod(member)
        if pod is None or not self.target.is_running(ref):
            raise ActionFailed(f"{member} is not running: nothing to pause")
        marker = self._marker(member)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(pod.metadata.uid))  # first: a crash after the STOP is undone
        self.target.sh(ref, PAUSE_SCRIPT,
                       what="freezing every postgres process (kill -STOP -1)")

    def resume(self, member: str) -> None:
        """Thaw every process of the pod; idempotent (nothing frozen: nothing to do)."""
        if self.target._pod(member) is not None:
            self.target.sh(self._ref(member), RESUME_SCRIPT,
                           what="resuming every postgres process (kill -CONT -1)")
        self._marker(member).unlink(missing_ok=True)

    def pause_process(self, member: str, pid: int) -> None:
        pid = int(pid)
        self.target.sh(
            self._ref(member),
            f'[ "$(cat /proc/{pid}/comm 2>/dev/null)" = postgres ] || '
            f'{{ echo "pid {pid} is not a postgres process of this pod" >&2; exit 1; }}; '
            f"kill -STOP {pid}",
            what=f"freezing pid {pid}")

    def resume_process(self, member: str, pid: int) -> None:
        """SIGCONT a postgres process of the pod; any other PID (reused, or the pod was
        recreated) is left alone."""
        if self.target._pod(member) is None:
            return
        pid = int(pid)
        self.target.sh(
            self._ref(member),
            f'if [ "$(cat /proc/{pid}/comm 2>/dev/null)" = postgres ]; then '
            f"kill -CONT {pid}; fi",
            what=f"resuming pid {pid}")

    def kill(self, member: str, sig: Signal = Signal.KILL) -> None:
        """Hold the member down (HOLD on its PVC), then KILL: delete the pod with grace 0;
        TERM: fast shutdown (SIGINT to the postmaster: a smart SIGTERM shutdown waits for
        every client) and a graceful delete. Returns once the old pod is gone; its
        replacement waits, NotReady, for start_member or rebuild_replica."""
        ref = self._container_up(member)
        if sig is Signal.TERM:
            self.resume(member)  # a frozen postmaster cannot shut down
        self.target.sh(ref, f"touch {HOLD}", what=f"holding {member} down ({HOLD})")
        if sig is Signal.KILL:
            # A forced pod delete still SIGTERMs first (the kubelet's minimum grace), which
            # PostgreSQL takes as a smart shutdown that keeps serving open sessions: SIGKILL
            # every postgres process now (shared PID namespace), as the local kill -9 does.
            self.target.sh(ref, "kill -KILL -1 2>/dev/null || true", what="kill -9")
        if sig is Signal.TERM:
            self.target.sh(
                ref, f'pid=$(head -n1 {PGDATA}/postmaster.pid 2>/dev/null) && '
                '[ "$(cat /proc/$pid/comm 2>/dev/null)" = postgres ] && kill -INT "$pid" '
                "|| true", what="fast shutdown")
        self.target.kill(ref, sig, hold=False)  # held above, before the processes died
        self._marker(member).unlink(missing_ok=True)

    def start_member(self, member: str) -> None:
        """Release the hold; return once the pod is Ready and answers queries."""
        ref = self._container_up(member)
        self.target.sh(ref, f"rm -f {HOLD}", what=f"releasing {member} ({HOLD})")
        self.target.start(ref, timeout=READY_TIMEOUT)
        self._wait_queries(member)
        self._route_live_primary()

    # -- replication ------------------------------------------------------------------

    def _config(self) -> str:
        return (self.target.read_config(CONFIGMAP) or {}).get("postgresql.conf", "")

    def synchronous_wanted(self) -> bool:
        """The ConfigMap's `synchronous_standby_names` key (applied by the init script with
        ALTER SYSTEM: in postgresql.conf it would hang the image's first-start init)."""
        names = (self.target.read_config(CONFIGMAP) or {}).get("synchronous_standby_names", "")
        return bool(names.strip().strip("'\""))

    def timescaledb_installed(self) -> bool:
        """The image carries the extension; the ConfigMap must preload it."""
        libs = _conf_value(self._config(), "shared_preload_libraries") or ""
        return "timescaledb" in [lib.strip() for lib in libs.split(",")]

    def set_synchronous(self, member: str, enabled: bool) -> None:
        from drillrunner.services.timescaledb import sql

        ref = self._ref(member)
        if not self.target.is_running(ref):
            raise ActionFailed(f"{member} is not running: cannot set "
                               "synchronous_standby_names on it")
        peers = [m.name for m in self.members() if m.name != member]
        want = ", ".join(f'"{p}"' for p in peers) if enabled else ""
        dsn = self.dsn(member)
        sql.fetch(dsn, f"ALTER SYSTEM SET synchronous_standby_names = {_sql_literal(want)}")
        sql.fetch(dsn, "SELECT pg_reload_conf()")
        poll_until(lambda: sql.fetch_value(self.dsn(member), "SHOW synchronous_standby_names")
                   == want, timeout=10, what=f"{member} to load "
                   f"synchronous_standby_names={want!r}")

    def _streaming(self, primary: str, replica: str) -> bool:
        import psycopg

        from drillrunner.services.timescaledb import sql

        try:
            rows = sql.standbys(self.dsn(primary))
        except psycopg.Error:
            return False
        return any(s.name == replica and s.state == "streaming" for s in rows)

    def rebuild_replica(self, member: str, primary: str) -> None:
        """Hold and stop the member (a fresh pod: no old postmaster may touch the data),
        wipe PGDATA and clone `primary` with pg_basebackup -R in the pod, release it and
        wait until the primary sees it streaming under its own name."""
        if member == primary:
            raise ActionFailed(f"refusing to rebuild {member}: it is the primary")
        if PITR in (member, primary):
            raise ActionFailed(f"{PITR} is a temporary restore copy, not a member of the "
                               "replicated cluster")
        self._ref(primary)  # raises on an unknown name
        self.kill(member, Signal.TERM)
        ref = self._container_up(member)
        conninfo = _conninfo(host=f"{primary}.{HEADLESS}", port=5432, user="replicator",
                             application_name=member)
        script = "\n".join([
            "set -eu",
            _NO_POSTGRES,
            f'test -e {HOLD} || {{ echo "{member} is not held down" >&2; exit 1; }}',
            # The replication password is in the container's environment (the primary
            # StatefulSet names it REPLICATION_PASSWORD, the replica's PGPASSWORD).
            'export PGPASSWORD="${REPLICATION_PASSWORD:-${PGPASSWORD:-}}"',
            # The member's old WAL archive belongs to a history it no longer has (the local
            # target clears it on a new clone too); it would only fill the volume.
            f"rm -rf {PGDATA} {ARCHIVE}",
            f"pg_basebackup -D {PGDATA} -X stream -c fast -R -w -d {shlex.quote(conninfo)}",
            f"sed -i '/^synchronous_standby_names/d' {PGDATA}/postgresql.auto.conf",
            f"rm -f {HOLD}",
        ])
        self.target.sh(ref, script, timeout=900.0,
                       what=f"cloning {member} from {primary} with pg_basebackup")
        self.target.start(ref, timeout=READY_TIMEOUT)
        self._wait_queries(member)
        poll_until(lambda: self._streaming(primary, member), timeout=STREAM_TIMEOUT,
                   interval=0.2, what=f"{member} to stream from {primary}")
        self._route_live_primary()

    # -- routing ----------------------------------------------------------------------

    def route_primary(self, member: str) -> None:
        """Point the Service timescaledb-primary at `member`; idempotent. The manifest's
        selector (by the creation-time role label) is put back for timescaledb-primary-0."""
        if member == PITR:
            raise ActionFailed(f"refusing to route Service {PRIMARY_SERVICE} to {PITR}: it "
                               "is a temporary restore copy")
        self._ref(member)  # raises on an unknown name
        core, ns = self.target.apis.core, self.target.namespace
        try:
            svc = core.read_namespaced_service(PRIMARY_SERVICE, ns)
        except Exception as exc:
            if http_status(exc) == 404:
                raise ActionFailed(f"no Service {PRIMARY_SERVICE} in namespace {ns}: "
                                   f"cannot route clients to {member}") from None
            raise
        current = dict(svc.spec.selector or {})
        if member == PRIMARY_POD:
            want: dict[str, str | None] = {**ORIGINAL_SELECTOR, STS_POD_LABEL: None}
        else:
            want = {NAME_LABEL: SERVICE, ROLE_LABEL: None, STS_POD_LABEL: member}
        if {k: v for k, v in want.items() if v is not None} == current:
            return
        # A strategic merge patch merges maps: a key is removed by setting it to null.
        core.patch_namespaced_service(PRIMARY_SERVICE, ns, {"spec": {"selector": want}})

    def _route_live_primary(self) -> None:
        """Route the Service to the one live primary, if there is exactly one."""
        from drillrunner.services.timescaledb.roles import Role, member_roles

        primaries = [n for n, r in member_roles(self.target).items() if r == Role.PRIMARY]
        if len(primaries) == 1:
            self.route_primary(primaries[0])

    # -- backups and point-in-time restore --------------------------------------------

    def base_backup(self, source: str, dest: Path) -> Path:
        """pg_basebackup (tar, gzip, WAL streamed) in the source pod as `replicator` over
        127.0.0.1 (pg_hba's `local all` does not match replication connections), its files
        copied into `dest` on the host; then the source's archive is pruned of segments
        older than this backup (a 2 GiB PVC holds it; no restore needs them any more)."""
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
        start = start_segment(dest / "base.tar.gz")
        self.target.sh(ref, f"if [ -d {ARCHIVE} ]; then pg_archivecleanup {ARCHIVE} "
                       f"{start}; fi", what=f"pruning {ARCHIVE} before {start}")
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
        core, ns = self.target.apis.core, self.target.namespace
        try:
            core.create_namespaced_pod(ns, pitr_pod(ns, image, target_time))
        except Exception as exc:
            if http_status(exc) is None:
                raise
            raise ActionFailed(f"{PITR}: cannot create the pod: "
                               f"{getattr(exc, 'reason', exc)}") from None
        ref = self._container_up(PITR)
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

        if self._staged != (backup, target_time) or self.target._pod(PITR) is None:
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
        pod = self.target._pod(member)
        if pod is None:
            raise ActionFailed(f"{member}: no such pod in namespace {self.target.namespace}")
        return str(pod.spec.containers[0].image)

    def _wait_restore_ready(self, ref: MemberRef) -> None:
        def ready() -> bool:
            pod = self.target._pod(PITR)
            if pod is None or pod.metadata.deletion_timestamp is not None:
                raise ActionFailed(f"{PITR}: the pod went away during the restore")
            phase = pod.status.phase if pod.status else None
            if phase in ("Failed", "Succeeded"):
                raise ActionFailed(f"{PITR}: PostgreSQL exited during recovery (pod "
                                   f"{phase}):\n{self._log(ref)}")
            return self.target._ready(pod)

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

    def remove_member(self, member: str) -> bool:
        """Delete the restore pod (grace 0; its ephemeral volume goes with it) and wait
        until it is gone. False if there was none. Idempotent (the undo, and `drill
        recover` after a crash)."""
        if member != PITR:
            raise ActionFailed(f"{member} is not a temporary member; only {PITR} can be "
                               "removed")
        self._refs.pop(PITR, None)  # a new pod may get a new address
        if self.target._pod(PITR) is None:
            return False
        try:
            self.target.apis.core.delete_namespaced_pod(PITR, self.target.namespace,
                                                        grace_period_seconds=0)
        except Exception as exc:
            if http_status(exc) != 404:
                raise
        try:
            poll_until(lambda: self.target._pod(PITR) is None, timeout=READY_TIMEOUT,
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
        'from (apply deploy/k8s/timescaledb/configmap.yaml and restart the pod)" >&2; '
        "exit 1; }",
        'export PGPASSWORD="${REPLICATION_PASSWORD:-${PGPASSWORD:-}}"',
        f"rm -rf {BACKUP_STAGE}",
        f"pg_basebackup -h 127.0.0.1 -U replicator -w -D {BACKUP_STAGE} -Ft -z -X stream "
        "-c fast -l drill-pitr",
    ])


def export_wal_script(start: str) -> str:
    """Run in the primary's pod: gzipped tar of the archived segments from `start`'s
    position on (any timeline) and every history file, base64 on stdout."""
    if not re.fullmatch(r"[0-9A-F]{24}", start):
        raise ActionFailed(f"{start!r} is not a WAL segment name")
    return "\n".join([
        "set -eu",
        f"trap 'rm -f {WAL_EXPORT}' EXIT",
        f'cd {ARCHIVE} 2>/dev/null || {{ echo "no WAL archive ({ARCHIVE}): is '
        'archive_mode on?" >&2; exit 1; }',
        f"set -- $(ls -1 | awk -v s={start} "
        "'(length($0) == 24 && substr($0, 9) >= substr(s, 9)) || /[.]history$/')",
        f'[ $# -gt 0 ] || {{ echo "no archived WAL segment from {start} on" >&2; exit 1; }}',
        f'tar -czf {WAL_EXPORT} "$@"',
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


# The restore container: wait for the gate, then the image's entrypoint (it finds a data
# folder, so it runs postgres without initdb).
GATE_COMMAND = (f"trap 'exit 0' TERM INT\n"
                f"until [ -e {PITR_GATE} ]; do sleep 0.5; done\n"
                'exec docker-entrypoint.sh "$@"\n')


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


def pitr_pod(namespace: str, image: str, target_time: str) -> dict[str, Any]:
    """The restore pod: the members' image, user, resources and probes; a bare pod (no
    controller: drill deletes it) with restartPolicy Never, so a failed recovery shows
    as a Failed pod instead of a crash loop. Readiness is probed every second: it ends
    restore_pitr's wait, which the RTO includes."""
    labels = {NAME_LABEL: SERVICE, "app.kubernetes.io/part-of": "drill-stack",
              "app.kubernetes.io/managed-by": "drill",
              # Not "server": Feast and the OMS build their DSNs from the server pods.
              "drill.dev/member-kind": "restore", ROLE_LABEL: "pitr"}
    ready = ["pg_isready", "-U", PG_USER, "-h", "127.0.0.1"]
    args = ["postgres", "-c", "config_file=/etc/timescaledb/postgresql.conf",
            # Overrides of the ConfigMap and of the backup's postgresql.auto.conf: a copy
            # archives nothing, waits for no standby and streams from no one (a clone made
            # with -R, later promoted, keeps primary_conninfo there).
            "-c", "archive_mode=off", "-c", "synchronous_standby_names=",
            "-c", "primary_conninfo=",
            "-c", f"cluster_name={PITR}",
            "-c", f"restore_command=cp {ARCHIVE}/%f %p",
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
            "securityContext": {"runAsNonRoot": True, "runAsUser": 70, "runAsGroup": 70,
                                "fsGroup": 70, "seccompProfile": {"type": "RuntimeDefault"}},
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
                                 {"name": "config", "mountPath": "/etc/timescaledb"},
                                 {"name": "run", "mountPath": SOCKETS}],
            }],
            "volumes": [
                # A PVC created and deleted with the pod (generic ephemeral volume).
                {"name": "data", "ephemeral": {"volumeClaimTemplate": {
                    "metadata": {"labels": {NAME_LABEL: SERVICE,
                                            "app.kubernetes.io/part-of": "drill-stack"}},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "2Gi"}}}}}},
                {"name": "config", "configMap": {"name": CONFIGMAP}},
                {"name": "run", "emptyDir": {}},  # the unix socket only
            ],
        },
    }

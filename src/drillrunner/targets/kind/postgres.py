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
* Point-in-time restore is impossible with these manifests (see PITR_UNSUPPORTED).

Passwords come from the Secret the pods use and only ever go into libpq connection
strings (never a log, a message or an argv: pg_basebackup in the pod reads it from the
container's environment).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from drillrunner.errors import ActionFailed
from drillrunner.services.timescaledb.ops import SERVICE
from drillrunner.targets.base import MemberRef, Signal
from drillrunner.targets.kind.deployments import KindDeployment
from drillrunner.waiting import WaitTimeout, poll_until

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
NAME_LABEL = "app.kubernetes.io/name"
ROLE_LABEL = "drill.dev/role"
STS_POD_LABEL = "statefulset.kubernetes.io/pod-name"
ORIGINAL_SELECTOR = {NAME_LABEL: SERVICE, ROLE_LABEL: "primary"}
READY_TIMEOUT = 180.0  # a new pod: scheduling, volume attach, crash recovery
QUERY_TIMEOUT = 30.0
STREAM_TIMEOUT = 60.0

PITR_UNSUPPORTED = (
    "the deploy/k8s/timescaledb manifests archive no WAL (archive_mode is off, and each "
    "member's PVC is ReadWriteOnce, so there is no volume an archive, both members and a "
    "temporary restore member could share), and a base backup alone cannot be replayed to "
    "a point in time; run the PITR drill on the local target")

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
            raise ActionFailed(f"{member}: no running pod in namespace "
                               f"{self.target.namespace} after {READY_TIMEOUT:g}s (its "
                               "StatefulSet scaled down, or the pod cannot start)") from None
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
        if sig is Signal.TERM:
            self.target.sh(
                ref, f'pid=$(head -n1 {PGDATA}/postmaster.pid 2>/dev/null) && '
                '[ "$(cat /proc/$pid/comm 2>/dev/null)" = postgres ] && kill -INT "$pid" '
                "|| true", what="fast shutdown")
        self.target.kill(ref, sig)
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
        return bool(_conf_value(self._config(), "synchronous_standby_names"))

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
            f"rm -rf {PGDATA}",
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
        self._ref(member)  # raises on an unknown name
        core, ns = self.target.apis.core, self.target.namespace
        try:
            svc = core.read_namespaced_service(PRIMARY_SERVICE, ns)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
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
        raise ActionFailed(f"timescaledb.base_backup is not supported on kind: it only feeds "
                           f"the point-in-time restore, and {PITR_UNSUPPORTED}")

    def pitr_member(self) -> MemberRef:
        """The name a restore member would have; never created on kind."""
        return MemberRef(service=SERVICE, name=PITR, host="127.0.0.1", port=5432)

    def restore_pitr(self, backup: Path, target_time: str) -> MemberRef:
        raise ActionFailed(f"point-in-time restore is not supported on kind: "
                           f"{PITR_UNSUPPORTED}")

    def remove_member(self, member: str) -> bool:
        if member != PITR:
            raise ActionFailed(f"{member} is not a temporary member; only {PITR} can be "
                               "removed")
        return False  # restore_pitr never creates it on kind

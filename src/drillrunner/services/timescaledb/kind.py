"""PostgresOps on kind: the TimescaleDB members as the pods of deploy/k8s/timescaledb.

Members: `timescaledb-primary-0` and `timescaledb-replica-0` (StatefulSets named after the
role each was CREATED with; live roles always come from `pg_is_in_recovery()`).

How the local semantics map onto pods, and why:

* Kept down until the rollback. A deleted pod is recreated at once by its StatefulSet, and
  scaling the StatefulSet to 0 would drop the member from `target.members()` (which the
  undo needs to find it). So the container's command waits while its hold file (the
  target's, targets/kind/hold.py: annotation `drill.dev/hold-file`) exists on the
  member's PVC before it starts PostgreSQL: `kill` writes it and deletes the pod (grace
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
Passwords come from the Secret the pods use and only ever go into libpq connection
strings (never a log, a message or an argv: pg_basebackup in the pod reads it from the
container's environment).
"""

from __future__ import annotations

import shlex

from drillrunner.core.errors import ActionFailed
from drillrunner.core.waiting import poll_until
from drillrunner.services.timescaledb.kind_members import (
    ARCHIVE,
    CONFIGMAP,
    DATA,
    HEADLESS,
    NAME_LABEL,
    NO_POSTGRES,
    ORIGINAL_SELECTOR,
    PAUSE_SCRIPT,
    PGDATA,
    PITR,
    PITR_GATE,
    PRIMARY_POD,
    PRIMARY_SERVICE,
    READY_TIMEOUT,
    RESUME_SCRIPT,
    ROLE_LABEL,
    STREAM_TIMEOUT,
    STS_POD_LABEL,
    conf_value,
    conninfo,
    sql_literal,
)
from drillrunner.services.timescaledb.kind_pitr import (
    KindPostgresPitr,
    export_wal_script,
    pitr_pod,
    start_segment,
)
from drillrunner.services.timescaledb.ops import SERVICE
from drillrunner.targets.base import Signal
from drillrunner.targets.kind.apis import http_status

__all__ = ["ARCHIVE", "DATA", "ORIGINAL_SELECTOR", "PAUSE_SCRIPT", "PGDATA", "PITR",
           "PITR_GATE", "RESUME_SCRIPT", "KindPostgresOps", "export_wal_script", "pitr_pod",
           "start_segment"]


class KindPostgresOps(KindPostgresPitr):
    """services/timescaledb/ops.py's PostgresOps (and RoutesPrimary) on the kind pods."""

    # -- process faults ---------------------------------------------------------------

    def is_paused(self, member: str) -> bool:
        """Paused by `pause` in THIS pod (a recreated pod runs new processes)."""
        marker = self._marker(member)
        if not marker.exists():
            return False
        pod = self.target.pod(member)
        return pod is not None and pod.uid == marker.read_text().strip()

    def pause(self, member: str) -> None:
        ref = self._ref(member)
        pod = self.target.pod(member)
        if pod is None or not self.target.is_running(ref):
            raise ActionFailed(f"{member} is not running: nothing to pause")
        marker = self._marker(member)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(pod.uid)  # first: a crash after the STOP is undone
        self.target.sh(ref, PAUSE_SCRIPT,
                       what="freezing every postgres process (kill -STOP -1)")

    def resume(self, member: str) -> None:
        """Thaw every process of the pod; idempotent (nothing frozen: nothing to do)."""
        if self.target.pod_exists(member):
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
        if not self.target.pod_exists(member):
            return
        pid = int(pid)
        self.target.sh(
            self._ref(member),
            f'if [ "$(cat /proc/{pid}/comm 2>/dev/null)" = postgres ]; then '
            f"kill -CONT {pid}; fi",
            what=f"resuming pid {pid}")

    def kill(self, member: str, sig: Signal = Signal.KILL) -> None:
        """Hold the member down (its hold file on its PVC), then KILL: delete the pod with grace 0;
        TERM: fast shutdown (SIGINT to the postmaster: a smart SIGTERM shutdown waits for
        every client) and a graceful delete. Returns once the old pod is gone; its
        replacement waits, NotReady, for start_member or rebuild_replica."""
        ref = self._container_up(member)
        if sig is Signal.TERM:
            self.resume(member)  # a frozen postmaster cannot shut down
        self.target.hold(ref)
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
        self.target.release(ref)
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
        libs = conf_value(self._config(), "shared_preload_libraries") or ""
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
        sql.fetch(dsn, f"ALTER SYSTEM SET synchronous_standby_names = {sql_literal(want)}")
        sql.fetch(dsn, "SELECT pg_reload_conf()")
        sql.wait_setting(dsn, "synchronous_standby_names", want,
                         what=f"{member} to load synchronous_standby_names={want!r}")

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
        hold = shlex.quote(self.target.hold_path(ref))
        source = conninfo(host=f"{primary}.{HEADLESS}", port=5432, user="replicator",
                          application_name=member)
        script = "\n".join([
            "set -eu",
            NO_POSTGRES,
            f'test -e {hold} || {{ echo "{member} is not held down" >&2; exit 1; }}',
            # The replication password is in the container's environment (the primary
            # StatefulSet names it REPLICATION_PASSWORD, the replica's PGPASSWORD).
            'export PGPASSWORD="${REPLICATION_PASSWORD:-${PGPASSWORD:-}}"',
            # The member's old WAL archive belongs to a history it no longer has (the local
            # target clears it on a new clone too); it would only fill the volume.
            f"rm -rf {PGDATA} {ARCHIVE}",
            f"pg_basebackup -D {PGDATA} -X stream -c fast -R -w -d {shlex.quote(source)}",
            f"sed -i '/^synchronous_standby_names/d' {PGDATA}/postgresql.auto.conf",
            f"rm -f {hold}",
        ])
        self.target.sh(ref, script, timeout=900.0,
                       what=f"cloning {member} from {primary} with pg_basebackup")
        self.target.start(ref, timeout=READY_TIMEOUT)
        self._wait_queries(member)
        from drillrunner.services.timescaledb import sql

        poll_until(lambda: sql.streams(self.dsn(primary), member), timeout=STREAM_TIMEOUT,
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

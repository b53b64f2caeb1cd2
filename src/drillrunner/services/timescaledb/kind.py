"""PostgresOps on kind: the TimescaleDB members as the pods of deploy/k8s/timescaledb.

Members: `timescaledb-0` and `timescaledb-1`, one StatefulSet of the timescaledb-ha image,
each pod a Patroni running its PostgreSQL; the Kubernetes API is Patroni's DCS (its
ConfigMaps `timescaledb-leader`, `-config`, `-sync`, `-failover`). Patroni decides the
roles and labels its pod with its own (`role: master` on the leader, `role: replica` on a
running replica); the Services select on that label, so clients follow a failover
without drill. Drill never promotes anyone: a failover drill kills or freezes the leader
and Patroni promotes the synchronous standby.

How the local semantics map onto pods, and why:

* Kept down until the rollback. A deleted pod is recreated at once by its StatefulSet, and
  scaling the StatefulSet down would drop members from `target.members()` (which the
  undo needs to find them). So the container's command waits while its hold file (the
  target's, targets/kind/hold.py: annotation `drill.dev/hold-file`) exists on the
  member's PVC before it execs Patroni: `kill` writes it and deletes the pod (KILL: every
  process of the pod SIGKILLed first, grace 0: the leader lock is left to expire, as
  after a crash; TERM: a graceful delete, whose SIGTERM makes Patroni stop PostgreSQL and
  release the lock). The new pod stays NotReady (no Patroni) until `start_member` or
  `rebuild_replica` removes the file.
* Pause. `kill -STOP -1` run by the postgres user in the pod freezes every process of that
  user except the caller and the PID namespace's init, which ignores signals it has no
  handler for (kill(2)). The manifests set `shareProcessNamespace: true`, so init is the
  pod's pause process and Patroni and the postmaster are frozen too: a frozen leader stops
  renewing its lock, as a frozen node would. Its stale `role` label stays, but its
  readiness (Patroni's /readiness) fails, so the Services drop it.
* Roles come from Patroni's pod label, a paused member being `paused` and a pod that is
  not Ready `down` whatever its (stale) label says.
Backups are pgBackRest's, run through exec in the leader's pod against its repository
(kind_backup.py); the point-in-time restore goes into the temporary pod of kind_pitr.py.
Passwords come from the Secret the pods use and only ever go into libpq connection
strings (never a log, a message or an argv: pg_basebackup in the pod reads it from the
container's environment).
"""

from __future__ import annotations

import json
import re
import shlex

from drillrunner.core.errors import ActionFailed
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.services.timescaledb.kind_backup import KindPgBackRest
from drillrunner.services.timescaledb.kind_members import (
    ARCHIVE,
    CONFIGMAP,
    DATA,
    DCS_CONFIG,
    PATRONI_CONF,
    PAUSE_SCRIPT,
    PGDATA,
    PITR,
    PITR_GATE,
    READY_TIMEOUT,
    RESUME_SCRIPT,
    SCOPE,
    STREAM_TIMEOUT,
    SWITCHOVER_TIMEOUT,
    patroni_role,
)
from drillrunner.services.timescaledb.kind_pitr import (
    export_wal_script,
    pitr_pod,
    start_segment,
)
from drillrunner.targets.base import Signal
from drillrunner.targets.kind.apis import http_status

__all__ = ["ARCHIVE", "DATA", "PAUSE_SCRIPT", "PGDATA", "PITR", "PITR_GATE", "RESUME_SCRIPT",
           "KindPostgresOps", "export_wal_script", "pitr_pod", "start_segment"]

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Patroni's REST API from inside the pod (python3: the image's own).
CLUSTER_SCRIPT = ("python3 -c \"import sys, urllib.request as u; sys.stdout.write(u.urlopen("
                  "'http://127.0.0.1:8008/cluster', timeout=5).read().decode())\"")


class KindPostgresOps(KindPgBackRest):
    """services/timescaledb/ops.py's PostgresOps (and BacksUpWithPgBackRest,
    kind_backup.py) on the kind pods, under Patroni."""

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
                       what="freezing every postgres-user process (kill -STOP -1)")

    def resume(self, member: str) -> None:
        """Thaw every process of the pod; idempotent (nothing frozen: nothing to do)."""
        if self.target.pod_exists(member):
            self.target.sh(self._ref(member), RESUME_SCRIPT,
                           what="resuming every postgres-user process (kill -CONT -1)")
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
        """Hold the member down (its hold file on its PVC), then KILL: SIGKILL Patroni and
        PostgreSQL and delete the pod with grace 0; TERM: delete it gracefully (Patroni
        stops PostgreSQL and hands the leader lock over). Returns once the old pod is
        gone; its replacement waits, NotReady, for start_member or rebuild_replica."""
        ref = self._container_up(member)
        if sig is Signal.TERM:
            self.resume(member)  # a frozen Patroni cannot shut down
        self.target.hold(ref)
        if sig is Signal.KILL:
            # A forced pod delete still SIGTERMs first (the kubelet's minimum grace), on
            # which Patroni would shut down cleanly and release the lock: SIGKILL every
            # process of the pod's user now, as a crash would.
            self.target.sh(ref, "kill -KILL -1 2>/dev/null || true", what="kill -9")
        self.target.kill(ref, sig, hold=False)  # held above, before the processes died
        self._marker(member).unlink(missing_ok=True)

    def start_member(self, member: str) -> None:
        """Release the hold; return once Patroni runs the member's PostgreSQL (as leader
        or replica: its role label, the pod Ready) and it answers queries."""
        ref = self._container_up(member)
        self.target.release(ref)
        self.target.start(ref, timeout=READY_TIMEOUT)
        self._wait_patroni(member)
        self._wait_queries(member)

    def _wait_patroni(self, member: str, timeout: float = READY_TIMEOUT) -> str:
        role = ""

        def labelled() -> bool:
            nonlocal role
            labels, ready = self._pod_labels().get(member, ({}, False))
            role = patroni_role(labels) or ""
            return ready and bool(role)

        try:
            poll_until(labelled, timeout=timeout, interval=0.5,
                       what=f"Patroni to run {member}'s PostgreSQL")
        except WaitTimeout:
            raise ActionFailed(f"{member}: Patroni labels no role on the pod (or it is not "
                               f"Ready) {timeout:g}s after its start:\n"
                               f"{self._log(self._ref(member))}") from None
        return role

    # -- roles, as Patroni reports them ---------------------------------------------------

    def patroni_roles(self) -> dict[str, str]:
        """member -> primary | replica | down | paused: Patroni's pod label on a Ready pod
        (a frozen or dead Patroni leaves its last label, and fails readiness)."""
        pods = self._pod_labels()
        roles: dict[str, str] = {}
        for m in self.members():
            if self.is_paused(m.name):
                roles[m.name] = "paused"
                continue
            labels, ready = pods.get(m.name, ({}, False))
            roles[m.name] = (patroni_role(labels) or "down") if ready else "down"
        return roles

    def cluster_state(self) -> list[dict[str, object]]:
        """Patroni's view of the cluster (GET /cluster of the first member whose Patroni
        answers, through exec: its REST API is not forwarded), for the evidence."""
        for m in self.members():
            if self.patroni_roles().get(m.name) in ("down", "paused"):
                continue
            try:
                out = self.target.sh(self._ref(m.name), CLUSTER_SCRIPT, timeout=15.0,
                                     what="GET /cluster from Patroni")
                doc = json.loads(out)
            except (ActionFailed, ValueError):
                continue
            members = doc.get("members") if isinstance(doc, dict) else None
            if isinstance(members, list):
                return [x for x in members if isinstance(x, dict)]
        return []

    def leader(self) -> str | None:
        leaders = [m for m, r in self.patroni_roles().items() if r == "primary"]
        return leaders[0] if len(leaders) == 1 else None

    def switchover(self, candidate: str | None = None,
                   timeout: float = SWITCHOVER_TIMEOUT) -> str:
        """A planned switchover: `patronictl switchover --force` in the leader's pod.
        Returns the new leader once Patroni labels it and its pod is Ready."""
        old = self.leader()
        if old is None:
            raise ActionFailed(f"no single Patroni leader to switch over from: "
                               f"{self.patroni_roles()}")
        if candidate is not None:
            if candidate in (old, PITR) or not _NAME.fullmatch(candidate):
                raise ActionFailed(f"{candidate!r} cannot take over from the leader {old}")
            self._ref(candidate)  # raises on an unknown name
        argv = ["patronictl", "-c", PATRONI_CONF, "switchover", SCOPE, "--leader", old,
                *(["--candidate", candidate] if candidate else []), "--force"]
        self.target.sh(self._ref(old), shlex.join(argv), timeout=timeout,
                       what=f"patronictl switchover from {old}")

        def moved() -> bool:
            new = self.leader()
            return new is not None and new != old and (candidate in (None, new))

        try:
            poll_until(moved, timeout=timeout, interval=0.5,
                       what=f"Patroni to hand the leadership over from {old}")
        except WaitTimeout:
            raise ActionFailed(f"switchover from {old}: no new leader after {timeout:g}s "
                               f"(roles {self.patroni_roles()})") from None
        new = self.leader()
        assert new is not None
        return new

    # -- settings ---------------------------------------------------------------------

    def _patroni_yaml(self) -> dict[str, object]:
        import yaml

        text = (self.target.read_config(CONFIGMAP) or {}).get("patroni.yaml", "")
        doc = yaml.safe_load(text) if text else None
        return doc if isinstance(doc, dict) else {}

    def _live_dcs(self) -> dict[str, object] | None:
        """The cluster-wide settings Patroni keeps (annotation `config` of its ConfigMap);
        None before the cluster exists."""
        try:
            cm = self.target.apis.core.read_namespaced_config_map(DCS_CONFIG,
                                                                  self.target.namespace)
        except Exception as exc:
            if http_status(exc) == 404:
                return None
            raise
        raw = ((cm.metadata.annotations if cm.metadata else None) or {}).get("config")
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None

    def synchronous_wanted(self) -> bool:
        """Patroni's synchronous_mode: the live cluster's, else the manifest's bootstrap."""
        dcs = self._live_dcs()
        if dcs is None:
            boot = _section(self._patroni_yaml(), "bootstrap")
            dcs = _section(boot, "dcs")
        return dcs.get("synchronous_mode") is True or str(
            dcs.get("synchronous_mode")).lower() in ("true", "on", "quorum")

    def predicted_failover(self) -> tuple[float, float]:
        """ops.PredictsFailover from Patroni's live ttl and loop_wait (else the manifest's
        bootstrap section, else Patroni's defaults 30 and 10)."""
        dcs = self._live_dcs()
        if dcs is None:
            dcs = _section(_section(self._patroni_yaml(), "bootstrap"), "dcs")
        ttl, loop = float(str(dcs.get("ttl") or 30)), float(str(dcs.get("loop_wait") or 10))
        return (ttl - loop, ttl + loop)

    def timescaledb_installed(self) -> bool:
        """The image carries the extension; Patroni's configuration must preload it."""
        pg = _section(self._patroni_yaml(), "postgresql")
        libs = str(_section(pg, "parameters").get("shared_preload_libraries") or "")
        return "timescaledb" in [lib.strip() for lib in libs.split(",")]

    # -- replicas ---------------------------------------------------------------------

    def rebuild_replica(self, member: str, primary: str) -> None:
        """Patroni's reinitialize (`patronictl reinit --force --wait`): it wipes the member
        and clones the leader; returns once the leader sees it streaming. A held member is
        released first: its Patroni must run (its PostgreSQL need not: a member that
        cannot start is what a rebuild is for), so reinit is retried until it answers."""
        if member == primary:
            raise ActionFailed(f"refusing to rebuild {member}: it is the primary")
        if PITR in (member, primary):
            raise ActionFailed(f"{PITR} is a temporary restore copy, not a member of the "
                               "replicated cluster")
        self._ref(primary)  # raises on an unknown name
        if self.is_paused(member):
            self.resume(member)
        ref = self._container_up(member)
        self.target.release(ref)
        script = shlex.join(["patronictl", "-c", PATRONI_CONF, "reinit", SCOPE, member,
                             "--force", "--wait"])
        failure: list[str] = []

        def reinit() -> bool:
            try:
                self.target.sh(ref, script, timeout=900.0,
                               what=f"patronictl reinit of {member}")
            except ActionFailed as exc:
                failure[:] = [str(exc)]
                return False
            return True

        try:
            poll_until(reinit, timeout=READY_TIMEOUT, interval=2.0,
                       what=f"Patroni to reinitialize {member}")
        except WaitTimeout:
            raise ActionFailed(failure[-1] if failure else
                               f"{member}: Patroni did not reinitialize it") from None
        from drillrunner.services.timescaledb import sql

        poll_until(lambda: sql.streams(self.dsn(primary), member), timeout=STREAM_TIMEOUT,
                   interval=0.5, what=f"{member} to stream from {primary}")


def _section(doc: object, key: str) -> dict[str, object]:
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, dict) else {}

"""PostgreSQL (service `timescaledb`) as supervised local processes, under Patroni.

Topology: `tsdb-0` and `tsdb-1`, each a Patroni (REST API on `<member>-api`) that runs its
PostgreSQL; etcd (`etcd-0..2`) holds the leader lock. Patroni decides the roles: drill
reads them and never promotes anyone itself. The temporary member `tsdb-pitr` of a
point-in-time restore is a plain PostgreSQL outside the HA cluster.

Patroni writes postgresql.conf from its own configuration file (`<state>/timescaledb/
patroni/<member>.yml`, rewritten on every `up()`); the cluster-wide settings (synchronous
mode, maximum lag on failover, ttl...) live in the DCS and are patched when they change.
PostgreSQL refuses to run as root: every Patroni and server runs as the `postgres` user.
"""

from __future__ import annotations

import os
import shutil
import signal
from typing import Any

from drillrunner.core.errors import StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.services.common import wait_or_fail
from drillrunner.services.etcd import client as etcd
from drillrunner.services.etcd.local import MEMBERS as ETCD_MEMBERS
from drillrunner.services.timescaledb import patroni, sql
from drillrunner.services.timescaledb.local_config import READY_TIMEOUT, PatroniFiles
from drillrunner.services.timescaledb.local_files import PITR, STANDING
from drillrunner.services.timescaledb.local_files import find_bindir as find_bindir
from drillrunner.targets.base import MemberRef, Signal
from drillrunner.targets.local.supervisor import (
    command_line,
    pids_working_in,
    process_state,
    signal_all,
)


class PostgresDeployment(PatroniFiles):
    """The TimescaleDB tier of the local stack; also the driver's `PostgresOps` here."""

    # -- processes ------------------------------------------------------------------------

    def processes(self, member: str) -> list[int]:
        """Patroni first, then every PostgreSQL process (they work in the data folder;
        Patroni daemonizes the postmaster, so it is no child of Patroni)."""
        leader = self.sup.pid(member)
        found = [p for p in pids_working_in(self.datadir(member)) if p != leader]
        return ([leader] if leader is not None else []) + found

    def _wait_no_processes(self, member: str, timeout: float = 10.0) -> None:
        try:
            poll_until(lambda: not self.processes(member), timeout=timeout / 2, interval=0.02,
                       what=f"{member}'s processes to exit")
        except WaitTimeout:
            signal_all(self.processes(member), signal.SIGKILL)
            poll_until(lambda: not self.processes(member), timeout=timeout / 2,
                       interval=0.02, what=f"{member}'s processes to exit after SIGKILL")

    def kill(self, member: str, sig: Signal = Signal.KILL) -> None:
        """KILL: Patroni and every PostgreSQL process die at once, as in a node crash.
        TERM: Patroni's orderly shutdown (it stops PostgreSQL and, as leader, hands the
        lock over). Returns once no process of the member is left."""
        if sig is Signal.TERM:
            self.resume(member)  # a frozen process cannot shut down
            # A plain PostgreSQL (the restore member) gets a fast shutdown: SIGTERM would
            # wait for every client to leave.
            stop = signal.SIGINT if member == PITR else signal.SIGTERM
            self.sup.kill(member, stop, timeout=60.0)
        else:
            rest = self.processes(member)[1:]
            self.sup.kill(member, signal.SIGKILL)
            signal_all(rest, signal.SIGKILL)
        self._wait_no_processes(member)

    def pause(self, member: str) -> None:
        """Freeze Patroni and every PostgreSQL process: the lock is no longer renewed."""
        pids = self.processes(member)
        if not pids:
            raise StackError(f"{member} is not running")
        signal_all(pids, signal.SIGSTOP)
        signal_all(self.processes(member), signal.SIGSTOP)  # any forked meanwhile

    def resume(self, member: str) -> None:
        signal_all(self.processes(member), signal.SIGCONT)

    def pause_process(self, member: str, pid: int) -> None:
        if pid not in self.processes(member):
            raise StackError(f"pid {pid} is not a process of {member}")
        os.kill(pid, signal.SIGSTOP)

    def resume_process(self, member: str, pid: int) -> None:
        if pid in self.processes(member):  # never signal a PID reused by something else
            os.kill(pid, signal.SIGCONT)

    def is_paused(self, member: str) -> bool:
        return self.sup.is_paused(member)

    def _clear_stale_locks(self, name: str) -> None:
        """A killed postmaster's lock files name a PID that may linger as a zombie;
        PostgreSQL would take it for a live server. Remove them once it is dead."""
        self._wait_no_processes(name)
        port = self.settings.port(name)
        for lock in (self.datadir(name) / "postmaster.pid",
                     self.sockets / f".s.PGSQL.{port}.lock"):
            try:
                pid = int(lock.read_text().split("\n", 1)[0])
            except (FileNotFoundError, ValueError):
                continue
            if process_state(pid) not in (None, "Z") and b"postgres" in command_line(pid):
                raise StackError(
                    f"{name}: a PostgreSQL server (pid {pid}) not started by drill runs on "
                    f"{self.datadir(name)}; stop it first"
                )
            lock.unlink(missing_ok=True)
            if lock.name.endswith(".lock"):
                (self.sockets / f".s.PGSQL.{port}").unlink(missing_ok=True)

    def start_member(self, member: str) -> None:
        """Start the member's Patroni (on its existing data); returns once Patroni runs
        PostgreSQL and it answers queries, as leader or replica."""
        if member == PITR:
            self._clear_stale_locks(member)
            self.sup.start(self.spec(member), ready_timeout=READY_TIMEOUT)
            self._wait_queries(member)
            return
        if self.sup.pid(member) is None:
            self._clear_stale_locks(member)
            self.sup.start(self.patroni_spec(member), ready_timeout=READY_TIMEOUT)
        self._wait_running(member)

    def _wait_running(self, member: str, timeout: float = READY_TIMEOUT) -> None:
        def running() -> bool:
            state = patroni.status(self.api(member))
            return state.get("state") == "running" and self._answers(member)

        wait_or_fail(running, timeout=timeout, interval=0.1,
                     what=f"Patroni to run {member}'s PostgreSQL",
                     retry_on=(patroni.PatroniUnreachable,),
                     log=self.patroni_spec(member).log)

    def _answers(self, member: str) -> bool:
        import psycopg

        try:
            return sql.fetch(self.dsn(member), "SELECT 1") == [(1,)]
        except psycopg.Error:
            return False

    def _wait_queries(self, name: str, timeout: float = 30.0) -> None:
        import psycopg

        wait_or_fail(lambda: sql.fetch(self.dsn(name), "SELECT 1") == [(1,)],
                     timeout=timeout, interval=0.05, what=f"{name} to accept queries",
                     retry_on=(psycopg.Error,), log=self.spec(name).log)

    def _stop(self, name: str) -> None:
        try:
            self.kill(name, Signal.TERM)
        except StackError:
            self.kill(name, Signal.KILL)
        self._wait_no_processes(name)
        self.sup.stop(name)  # drops the PID record

    # -- roles, as Patroni reports them ---------------------------------------------------

    def patroni_roles(self) -> dict[str, str]:
        """member -> primary | replica | down | paused, from each member's Patroni."""
        roles: dict[str, str] = {}
        for member in STANDING:
            if self.sup.is_paused(member):
                roles[member] = "paused"
                continue
            try:
                state = patroni.status(self.api(member))
            except patroni.PatroniUnreachable:
                roles[member] = "down"
                continue
            role = patroni.PatroniRole.of(state.get("role"))
            running = state.get("state") == "running"
            roles[member] = ("primary" if role is patroni.PatroniRole.LEADER else "replica"
                             ) if running else "down"
        return roles

    def leader(self) -> str | None:
        """The member holding the leader lock, per any Patroni that answers."""
        for member in STANDING:
            try:
                for m in patroni.cluster(self.api(member)):
                    if m.get("role") in ("leader", "standby_leader"):
                        return str(m["name"])
                return None
            except patroni.PatroniUnreachable:
                continue
        return None

    def synchronous_wanted(self) -> bool:
        return self.pg_settings.synchronous

    def cluster_state(self) -> list[dict[str, Any]]:
        """Patroni's view of the cluster (for the evidence): /cluster of any member."""
        for member in STANDING:
            try:
                return patroni.cluster(self.api(member))
            except patroni.PatroniUnreachable:
                continue
        return []

    # -- planned operations ---------------------------------------------------------------

    def switchover(self, candidate: str | None = None, timeout: float = 60.0) -> str:
        """A planned switchover through the leader's REST API (what `patronictl
        switchover` does). Returns the new leader."""
        leader = self.leader()
        if leader is None:
            raise StackError("no Patroni leader to switch over from")
        if candidate is None:
            candidate = next((m for m in STANDING if m != leader), None)
        if candidate is None or candidate == leader:
            raise StackError(f"no candidate other than the leader {leader}")
        code, text = patroni.post(self.api(leader), "switchover",
                                  {"leader": leader, "candidate": candidate}, timeout=timeout)
        if code != 200:
            raise StackError(f"Patroni refused the switchover to {candidate}: {code} {text}")
        return candidate

    def rebuild_replica(self, member: str, primary: str) -> None:
        """Patroni's reinitialize: wipe the member and clone it from the leader."""
        if member == primary:
            raise StackError(f"refusing to rebuild {member}: it is the primary")
        if self.sup.pid(member) is None:
            self.start_member(member)
        code, text = patroni.post(self.api(member), "reinitialize", {"force": True})
        if code != 200:
            raise StackError(f"Patroni refused to reinitialize {member}: {code} {text}")
        self.wait_streaming(primary, member)

    def wait_streaming(self, primary: str, replica: str, sync: bool | None = None,
                       timeout: float = READY_TIMEOUT) -> None:
        mode = "" if sync is None else (" synchronously" if sync else " asynchronously")
        import psycopg

        wait_or_fail(lambda: sql.streams(self.dsn(primary), replica, sync), timeout=timeout,
                     interval=0.05, what=f"{replica} to stream from {primary}{mode}",
                     retry_on=(psycopg.Error,), log=self.patroni_spec(replica).log)

    # -- up / down ------------------------------------------------------------------------

    def _forget_cluster(self) -> None:
        """No member has data: drop what the DCS remembers of an earlier cluster (its
        system id would make Patroni wait for a leader that no longer exists)."""
        member = MemberRef(service="etcd", name=ETCD_MEMBERS[0], host="127.0.0.1",
                           port=self.settings.port(ETCD_MEMBERS[0]))
        etcd.delete_prefix(member, f"{patroni.NAMESPACE}{patroni.SCOPE}/")

    def _adopt_old_layout(self) -> None:
        """A data folder made without Patroni (no Patroni file beside it) is re-initialised:
        Patroni must create the cluster, its users and its replication slots itself."""
        if self.patroni_dir.exists():
            return
        for name in STANDING:
            if self._has_data(name):
                self._stop(name)
                shutil.rmtree(self.datadir(name))

    def up(self) -> None:
        self._prepare()
        problems = self.timings().problems()
        if problems:
            raise StackError("timescaledb settings: " + "; ".join(problems))
        self._adopt_old_layout()
        self.patroni_dir.mkdir(exist_ok=True)
        self._own(self.patroni_dir, 0o700)
        if not any(self._has_data(n) for n in STANDING):
            self._forget_cluster()
        changed = {n: self._write_config(n) for n in STANDING}
        for name in STANDING:  # a member left frozen by a drill: thaw it
            self.resume(name)
        for name in STANDING:
            if self.sup.pid(name) is None:
                self._clear_stale_locks(name)
                self.sup.start(self.patroni_spec(name), ready_timeout=READY_TIMEOUT)
        for name in STANDING:
            self._wait_running(name)
        self._apply(changed)
        leader = self._wait_leader()
        sync = self.pg_settings.synchronous
        for name in STANDING:
            if name != leader:
                self._wait_replica(leader, name, sync)
        sql.wait_writable(self.dsn(leader), timeout=30.0, what=f"{leader} to commit a write")
        self.ensure_stanza()  # pgBackRest's repository, before archive-push needs it
        self._start_router()
        sql.wait_writable(self.router_dsn(), timeout=30.0,
                          what="the router to reach the primary")

    def _wait_leader(self) -> str:
        found: list[str] = []

        def one() -> bool:
            roles = self.patroni_roles()
            found[:] = [n for n, r in roles.items() if r == "primary"]
            return len(found) == 1 and self.leader() == found[0]

        poll_until(one, timeout=READY_TIMEOUT, interval=0.1, what="a Patroni leader")
        return found[0]

    def _wait_replica(self, leader: str, name: str, sync: bool) -> None:
        try:
            self.wait_streaming(leader, name, sync=sync, timeout=30.0)
        except StackError:
            # Diverged beyond what pg_rewind repairs, or a broken data folder.
            self.rebuild_replica(name, leader)
            self.wait_streaming(leader, name, sync=sync)
        if sync:
            # In synchronous mode Patroni promotes only the member its /sync key names:
            # until the DCS says so, a failover would find no candidate.
            poll_until(lambda: any(m.get("name") == name and m.get("role") == "sync_standby"
                                   for m in self.cluster_state()),
                       timeout=30.0, interval=0.1, what=f"Patroni to name {name} sync standby")

    def _apply(self, changed: dict[str, bool]) -> None:
        """Bring the DCS and every member up to the written settings."""
        leader = self._wait_leader()
        patroni.patch_config(self.api(leader), self.dcs_config())
        for name, did in changed.items():
            if did:
                patroni.post(self.api(name), "reload", timeout=10.0)
        for name in STANDING:
            self._restart_if_pending(name)

    def _restart_if_pending(self, name: str) -> None:
        def settled() -> bool:
            return patroni.status(self.api(name)).get("pending_restart") is not True

        try:
            poll_until(settled, timeout=3.0, interval=0.2, what=f"{name}'s pending restart")
            return
        except WaitTimeout:
            pass
        code, text = patroni.post(self.api(name), "restart", timeout=60.0)
        if code != 200:
            raise StackError(f"Patroni could not restart {name}: {code} {text}")
        self._wait_running(name)

    def down(self) -> None:
        # Replicas first: a leader stopped first would hand its lock to a replica that
        # is about to stop as well.
        leader = self.leader()
        self.sup.stop(self.ROUTER)
        for name in sorted(STANDING, key=lambda n: n == leader):
            self._stop(name)
        self._stop(PITR)

    def remove_member(self, member: str) -> bool:
        if member in STANDING:
            raise StackError(f"{member} is a standing member; only {PITR} can be removed")
        path = self.datadir(member)
        existed = path.exists() or self.sup.pid(member) is not None
        self._stop(member)
        if path.exists():
            shutil.rmtree(path)
        return existed

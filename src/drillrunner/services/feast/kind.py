"""FeastOps on kind: the feature server as StatefulSet `feast-feature-server` (member
feast-feature-server-0), the SQL registry in schema `feast_registry` of the database `feast`
on the TimescaleDB primary, the online store in Redis database 5 (deploy/k8s/feast/).

- The feast CLI runs by exec in a running feast pod (the feature server, else the registry
  server: same image, repository /opt/feast/repo, config in /etc/feast and the password
  in its environment), with a copy of feature_store.yaml, as the feast-apply Job does.
- The offline truth, the registry's tables and the online store are read from here through
  the members' forwarded ports (psycopg as the `feast` role, password from Secret
  feast-credentials, never logged; redis-py on the master the sentinels name).
- Registry dumps go through the TimescaleDB primary pod: pg_dump/pg_restore/psql there (as
  postgres over its socket; the timescaledb image has the client tools), base64 over exec.
- Start/stop scale the StatefulSet (a deleted pod would come straight back).
"""

from __future__ import annotations

import base64
import shlex
import time
from pathlib import Path
from typing import Any

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.evidence.redact import redact_text
from drillrunner.services.feast import http
from drillrunner.services.feast.ops import SERVICE, CliRun
from drillrunner.services.feast.stores import PG_DB, PG_ROLE, SCHEMA, FeastStores
from drillrunner.targets.base import MemberRef
from drillrunner.targets.kind.deployments import KindDeployment
from drillrunner.targets.kind.statefulsets import (
    crashed_exit_code,
    start_statefulset,
    stop_statefulset,
)

STATEFULSET = "feast-feature-server"
SERVER = f"{STATEFULSET}-0"
REGISTRY_POD = "feast-registry-0"
CONFIG = "/etc/feast/feature_store.yaml"
REPO = "/opt/feast/repo"
CLI_CONFIG = "/tmp/drill-feast-cli.yaml"
REMOTE_DUMP = "/tmp/drill-feast-registry.dump"  # in the primary pod, during a restore
CREDENTIALS, PASSWORD_KEY = "feast-credentials", "offline-store-password"
# As on the local stack (services/feast/local.py), and as deploy/k8s/feast/configmap.yaml says.
START_TIMEOUT = 90.0
PSQL = ["psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", PG_DB, "-tAc"]


class KindFeastOps(KindDeployment, FeastStores):
    """FeastOps on kind (see the module docstring)."""

    remote_dump = REMOTE_DUMP

    # -- addresses --------------------------------------------------------------------

    def server(self) -> MemberRef:
        try:
            return self.target.member(SERVICE, SERVER)
        except StackError:
            # Scaled to 0 by stop_server: no address until it starts (port 0 refuses).
            return MemberRef(service=SERVICE, name=SERVER, host="127.0.0.1", port=0)

    def base_url(self) -> str:
        m = self.server()
        return f"http://{m.host}:{m.port}"

    def _feast_conn(self) -> Any:
        """Feast's own role on the TimescaleDB primary (multi-host, read-write)."""
        import psycopg

        servers = [m for m in self.target.members("timescaledb") if m.kind == "server"]
        if not servers:
            raise ActionFailed("no TimescaleDB pods found for Feast's database")
        dsn = (f"host={','.join(m.host for m in servers)} "
               f"port={','.join(str(m.port) for m in servers)} dbname={PG_DB} "
               f"user={PG_ROLE} target_session_attrs=read-write")
        return psycopg.connect(dsn, password=self.target.secret_value(CREDENTIALS, PASSWORD_KEY),
                               autocommit=True, connect_timeout=2)

    def _redis_master(self) -> MemberRef:
        from drillrunner.services.redis.ops import redis_ops

        return redis_ops(self.target).current_master()

    # -- the CLI ----------------------------------------------------------------------

    def _cli_pod(self) -> MemberRef:
        for name in (SERVER, REGISTRY_POD):
            for m in self.members():
                if m.name == name and self.target.is_running(m):
                    return m
        raise ActionFailed(f"no running feast pod ({SERVER} or {REGISTRY_POD}) to run the "
                           "feast CLI in")

    def _ensure_schema(self) -> None:
        """The SQL registry needs its schema (seed.py made it at install; a destroyed
        registry took it away): `feast apply` creates the tables, not the schema."""
        with self._feast_conn() as conn:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")

    def run_cli(self, *args: str, timeout: float = 180.0) -> CliRun:
        command = "feast " + " ".join(args)
        pod = self._cli_pod()
        if args[:1] == ("apply",):
            self._ensure_schema()
        script = (f"cp {CONFIG} {CLI_CONFIG} && cd {REPO} && exec feast --feature-store-yaml "
                  f"{CLI_CONFIG} {' '.join(shlex.quote(a) for a in args)}")
        t0 = time.monotonic()
        try:
            out = self.target.exec(pod, ["sh", "-c", script], timeout=timeout)
        except ActionFailed as exc:
            if "did not finish" not in str(exc):
                raise
            return CliRun(command, time.monotonic() - t0, -1, f"timed out after {timeout:g}s")
        tail = redact_text("\n".join((out.stdout + out.stderr).strip().splitlines()[-12:]))
        return CliRun(command, time.monotonic() - t0, out.returncode, tail)

    # -- the SQL registry -------------------------------------------------------------

    def _pg_primary(self) -> MemberRef:
        """The TimescaleDB pod that is not in recovery (asked, not read from labels)."""
        for m in self.target.members("timescaledb"):
            if m.kind != "server" or not self.target.is_running(m):
                continue
            out = self.target.exec(m, ["psql", "-U", "postgres", "-tAc",
                                       "SELECT pg_is_in_recovery()"], timeout=15.0)
            if out.returncode == 0 and out.stdout.strip() == "f":
                return m
        raise ActionFailed("no TimescaleDB primary answers (no running pod outside "
                           "recovery): the Feast registry lives there")

    def backup_registry(self, dest: Path) -> Path:
        """pg_dump (custom format) of the registry schema in the primary pod, copied out
        base64-encoded (exec carries text)."""
        primary = self._pg_primary()
        script = (f'f=$(mktemp) && pg_dump -U postgres -d {PG_DB} -n {SCHEMA} '
                  '-Fc -f "$f" && base64 "$f"; rc=$?; rm -f "$f"; exit $rc')
        out = self.target.sh(primary, script, timeout=120.0, what="pg_dump of the registry")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(base64.b64decode("".join(out.split())))
        return dest

    def destroy_registry(self) -> None:
        self.target.sh(self._pg_primary(), shlex.join(
            [*PSQL, f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"]),
            what="dropping the registry schema")

    def restore_registry(self, src: Path) -> None:
        if not src.exists():
            raise StackError(f"registry backup {src} does not exist")
        primary = self._pg_primary()
        remote = shlex.quote(self.remote_dump)
        self.target.write_file(primary, self.remote_dump, src.read_bytes())
        drop = shlex.join([*PSQL, f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"])
        self.target.sh(primary, f"{drop} && pg_restore -U postgres -d {PG_DB} "
                       f"--exit-on-error {remote}; rc=$?; rm -f {remote}; exit $rc",
                       timeout=120.0, what="pg_restore of the registry")

    # -- the server -------------------------------------------------------------------

    def start_server(self, timeout: float = START_TIMEOUT) -> None:
        """Scale the StatefulSet back up if it is stopped; return once the server answers
        HTTP (any status, as the local target waits for its port). StackError if its
        container exits (e.g. no registry) or it stays silent."""
        start_statefulset(self.target, STATEFULSET, 1)

        def up() -> bool:
            code = crashed_exit_code(self.target, SERVER)
            if code is not None:
                raise StackError(f"{SERVER} exited with code {code} (see its log: kubectl "
                                 f"-n {self.target.namespace} logs {SERVER})")
            return http.health(self.base_url(), timeout=1.0) is not None

        try:
            poll_until(up, timeout=timeout, interval=0.5, what=f"{SERVER} to answer HTTP")
        except WaitTimeout as exc:
            raise StackError(str(exc)) from None

    def stop_server(self) -> None:
        """Scale the StatefulSet to 0 and wait until the pod is gone; idempotent."""
        stop_statefulset(self.target, STATEFULSET)

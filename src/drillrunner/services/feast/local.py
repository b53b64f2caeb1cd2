"""Feast (service `feast`) on the local target: one feature server, `feast serve`, as feast-0.

Feast keeps nothing of its own on disk here: the SQL registry lives in PostgreSQL (schema
`feast_registry` of the database `feast`), the offline truth is a PostgreSQL table in the
same database, and the online store is Redis database 5 of the project's Redis tier,
reached through its sentinels (Feast follows a Redis failover). Both must be up first:
the stack starts deployments in DEPLOYMENTS order, timescaledb and redis before feast.

Layout: `<state>/feast/` holds `repo/` (the feature definitions copied from
deploy/local/feast/feature_repo/ and a generated feature_store.yaml naming the current
PostgreSQL primary), `pg-password` (0600; the yaml says `${FEAST_PG_PASSWORD}`, so the
secret reaches the feast processes through their environment only) and `feast-0.log`.

The drill process never imports feast (2.5-7 s): `feast apply` and CLI materialisation
run as subprocesses of the venv's `feast`, everything else goes through the server's HTTP
API, psycopg and redis-py.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from drillrunner.core.errors import MissingBinary, StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.evidence.redact import redact_text
from drillrunner.services.common import wait_or_fail
from drillrunner.services.feast import canary, http
from drillrunner.services.feast.local_repo import (
    PASSWORD_ENV,
    REGISTRY_TTL,
    feast_cli,
    feature_store_yaml,
    repo_source,
)
from drillrunner.services.feast.ops import SERVICE, CliRun
from drillrunner.services.feast.stores import PG_DB, PG_ROLE, SCHEMA, FeastStores
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import MemberRef
from drillrunner.targets.local.supervisor import (
    ProcessSpec,
    Supervisor,
    port_in_use,
    process_state,
    tree_pids,
)

MEMBER = "feast-0"
START_TIMEOUT = 90.0  # `import feast` alone takes 2.5-7 s on a busy 2-core machine
READY_TIMEOUT = 120.0
STOP_GRACE = 3.0


class FeastDeployment(FeastStores):
    """The Feast tier of the local stack; also the driver's `FeastOps` on this target."""

    service = SERVICE

    def __init__(self, settings: StackSettings, state: Path, sup: Supervisor) -> None:
        self.settings = settings
        self.state = state
        self.sup = sup
        self.root = state / "feast"
        self.repo = self.root / "repo"

    # -- layout ---------------------------------------------------------------------------

    def server(self) -> MemberRef:
        return MemberRef(service=SERVICE, name=MEMBER, host="127.0.0.1",
                         port=self.settings.port(MEMBER))

    def members(self) -> list[MemberRef]:
        return [self.server()]

    def base_url(self) -> str:
        m = self.server()
        return f"http://{m.host}:{m.port}"

    def spec(self, name: str) -> ProcessSpec:
        if name != MEMBER:
            raise StackError(f"feast has no member {name!r}")
        return ProcessSpec(
            name=MEMBER,
            argv=[str(feast_cli()), "serve", "-h", "127.0.0.1", "-p", str(self.server().port),
                  "--no-access-log", "-r", str(REGISTRY_TTL),
                  # gunicorn recycles its worker every 1000 requests by default; a new
                  # worker takes seconds to import feast, an outage no fault caused.
                  "--max-requests", "0"],
            port=self.server().port,
            log=self.root / f"{MEMBER}.log",
            cwd=self.repo,
            env=self._env(),
        )

    def config_files(self, name: str) -> list[Path]:
        return [self.repo / "feature_store.yaml", self.repo / "drill_features.py"]

    def check_binaries(self) -> None:
        feast_cli()
        if not (repo_source() / "drill_features.py").exists():
            raise StackError(f"the feature repository {repo_source()} is missing")

    def versions(self) -> dict[str, str]:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return {"feast": version("feast")}  # the package metadata: no import of feast
        except PackageNotFoundError:
            return {"feast": "not installed"}

    # -- the dependencies: PostgreSQL and Redis of this stack -----------------------------

    @cached_property
    def _postgres(self) -> Any:
        from drillrunner.services.timescaledb.local import PostgresDeployment

        return PostgresDeployment(self.settings, self.state, self.sup)

    @cached_property
    def _redis(self) -> Any:
        from drillrunner.services.redis.local import RedisDeployment

        return RedisDeployment(self.settings, self.state, self.sup)

    def _password(self) -> str:
        path = self.root / "pg-password"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24))
        return path.read_text().strip()

    def _env(self) -> dict[str, str]:
        return {PASSWORD_ENV: self._password(), "FEAST_USAGE": "False",
                "HOME": str(self.root)}

    def _admin(self) -> Any:
        """A superuser connection to the current primary's `feast` database."""
        from drillrunner.services.timescaledb import sql

        return sql.connect(self._postgres.cluster_dsn(timeout=2.0).replace(
            "dbname=postgres", f"dbname={PG_DB}"), timeout=10.0)

    def _feast_conn(self) -> Any:
        """Feast's own role, with its password, on the current primary."""
        import psycopg

        dsn = self._postgres.cluster_dsn(timeout=2.0).replace(
            "user=postgres", f"user={PG_ROLE}").replace("dbname=postgres", f"dbname={PG_DB}")
        return psycopg.connect(dsn, password=self._password(), autocommit=True,
                               connect_timeout=2)

    def _primary_port(self) -> int:
        from drillrunner.services.timescaledb import sql

        port = sql.fetch_value(self._postgres.cluster_dsn(timeout=2.0),
                               "SELECT inet_server_port()")
        return int(port)

    def _redis_master(self) -> MemberRef:
        master: MemberRef = self._redis.current_master()
        return master

    # -- set-up ---------------------------------------------------------------------------

    def _ensure_database(self) -> None:
        """Role with a password (its SCRAM verifier computed here: the plain password
        never reaches the server or its logs), database, registry schema, truth table."""
        from psycopg import sql as q

        from drillrunner.services.timescaledb import sql

        admin_dsn = self._postgres.cluster_dsn(timeout=2.0)
        with sql.connect(admin_dsn, timeout=10.0) as conn:
            verifier = conn.pgconn.encrypt_password(
                self._password().encode(), PG_ROLE.encode(), b"scram-sha-256").decode()
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                  [PG_ROLE]).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(q.SQL(f"{verb} ROLE {{}} LOGIN PASSWORD {{}}").format(
                q.Identifier(PG_ROLE), q.Literal(verifier)))
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                [PG_DB]).fetchone():
                conn.execute(q.SQL("CREATE DATABASE {} OWNER {}").format(
                    q.Identifier(PG_DB), q.Identifier(PG_ROLE)))
        with self._feast_conn() as conn:
            conn.execute(q.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                q.Identifier(SCHEMA)))
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {canary.TABLE} ({canary.JOIN_KEY} bigint NOT NULL,"
                " event_timestamp timestamptz NOT NULL, created timestamptz NOT NULL,"
                " conv_rate double precision NOT NULL, trips bigint NOT NULL,"
                f" PRIMARY KEY ({canary.JOIN_KEY}, event_timestamp))")
            base = datetime(2025, 1, 1, tzinfo=UTC)
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {canary.TABLE} VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    [(d, base + timedelta(hours=h), base + timedelta(hours=h), rate, trips)
                     for d, h, rate, trips in canary.canary_rows()])

    def _write_repo(self) -> bool:
        """Copy the definitions and generate feature_store.yaml; True if anything changed."""
        self.repo.mkdir(parents=True, exist_ok=True)
        source = (repo_source() / "drill_features.py").read_text()
        sentinels = ",".join(f"{s.host}:{s.port}" for s in self._redis.sentinels())
        # The router's port, not a member's: Feast follows a failover with no restart.
        yaml = feature_store_yaml(self._postgres.router_port(), sentinels,
                                  self._redis.master_name)
        changed = False
        for name, text in (("drill_features.py", source), ("feature_store.yaml", yaml)):
            path = self.repo / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
                changed = True
        return changed

    def _definitions_hash(self) -> str:
        return hashlib.sha256((self.repo / "drill_features.py").read_bytes()).hexdigest()

    def run_cli(self, *args: str, timeout: float = 180.0) -> CliRun:
        command = "feast " + " ".join(args)
        t0 = time.monotonic()
        try:
            out = subprocess.run(
                [str(feast_cli()), *args], cwd=self.repo, capture_output=True, text=True,
                timeout=timeout, check=False,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
                     **self._env()},
            )
        except subprocess.TimeoutExpired:
            return CliRun(command, time.monotonic() - t0, -1, f"timed out after {timeout:g}s")
        tail = redact_text("\n".join((out.stdout + out.stderr).strip().splitlines()[-12:]))
        return CliRun(command, time.monotonic() - t0, out.returncode, tail)

    def _apply(self) -> CliRun:
        run = self.run_cli("apply")
        if run.returncode != 0:
            raise StackError(f"feast apply failed (exit {run.returncode}): {run.output_tail}")
        (self.root / "applied.sha256").write_text(self._definitions_hash())
        return run

    def _needs_apply(self) -> bool:
        marker = self.root / "applied.sha256"
        return (not self.registry_present() or not marker.exists()
                or marker.read_text() != self._definitions_hash())

    # -- lifecycle ------------------------------------------------------------------------

    def up(self) -> None:
        self.check_binaries()
        self.root.mkdir(parents=True, exist_ok=True)
        self._ensure_database()
        changed = self._write_repo()
        if self._needs_apply():
            self._apply()
        if changed and self.sup.pid(MEMBER) is not None:
            self.stop_server()  # running with an old config (another primary)
        self.start_server(START_TIMEOUT)
        self.wait_healthy(READY_TIMEOUT)
        if not self.canaries_correct():
            start, end = self.materialize_range()
            http.materialize(self.base_url(), start, end, timeout=READY_TIMEOUT)
        wait_or_fail(self.canaries_correct, timeout=READY_TIMEOUT, interval=0.2,
                     what="feast-0 to serve the canary features of the offline store")

    def down(self) -> None:
        self.stop_server()

    def start_server(self, timeout: float = START_TIMEOUT) -> None:
        if self.sup.pid(MEMBER) is not None:
            return
        self._write_repo()
        self.sup.start(self.spec(MEMBER), ready_timeout=timeout)

    def stop_server(self) -> None:
        """SIGINT (gunicorn's quick shutdown), then SIGKILL after STOP_GRACE. Measured on
        Feast 0.67: the uvicorn worker never finishes its shutdown and gunicorn kills it
        only after its 30 s graceful timeout. The server keeps no state of its own."""
        leader = self.sup.pid(MEMBER)
        if leader is not None:
            # Every process of the tree, taken now: the master may exit before its worker,
            # which still holds the port.
            pids = tree_pids(leader)

            def gone() -> bool:
                return all(process_state(p) in (None, "Z") for p in pids)

            with contextlib.suppress(ProcessLookupError):
                os.kill(leader, signal.SIGINT)
            with contextlib.suppress(WaitTimeout):
                poll_until(gone, timeout=STOP_GRACE, interval=0.05, what="feast-0 to shut down")
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            port = self.server().port
            wait_or_fail(gone, timeout=10.0, interval=0.02, what="feast-0 to exit")
            # Seen here: the listening socket outlives the killed processes briefly.
            wait_or_fail(lambda: not port_in_use(port), timeout=10.0, interval=0.02,
                         what=f"port {port} to be released")
        self.sup.stop(MEMBER)  # forgets the PID record (the next start reaps the child)

    def wait_healthy(self, timeout: float) -> None:
        wait_or_fail(lambda: http.health(self.base_url()) == 200, timeout=timeout,
                     interval=0.1, what="feast-0's /health to answer 200")

    def canaries_correct(self) -> bool:
        try:
            served = canary.parse_response(http.online_features(self.base_url()))
        except Exception:
            return False
        return not canary.compare(self.offline_truth(), served)

    # -- FeastOps -------------------------------------------------------------------------

    def _pg_tool(self, tool: str) -> str:
        path = Path(self._postgres.bindir) / tool
        if not path.exists():
            raise MissingBinary(f"{tool} not found in {path.parent}: "
                                "install the Debian package postgresql-15")
        return str(path)

    def _run_pg(self, argv: list[str], timeout: float = 120.0) -> None:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                  "LC_ALL": "C.UTF-8"})
        if out.returncode != 0:
            raise StackError(f"{Path(argv[0]).name} failed (exit {out.returncode}): "
                             f"{redact_text(out.stderr.strip()[-1500:])}")

    def backup_registry(self, dest: Path) -> Path:
        """pg_dump of the registry schema (custom format) from the current primary."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._run_pg([self._pg_tool("pg_dump"), "-h", "127.0.0.1", "-p",
                      str(self._primary_port()), "-U", "postgres", "-d", PG_DB,
                      "-n", SCHEMA, "-Fc", "-f", str(dest)])
        return dest

    def destroy_registry(self) -> None:
        with self._admin() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")

    def restore_registry(self, src: Path) -> None:
        if not src.exists():
            raise StackError(f"registry backup {src} does not exist")
        with self._admin() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        self._run_pg([self._pg_tool("pg_restore"), "-h", "127.0.0.1", "-p",
                      str(self._primary_port()), "-U", "postgres", "-d", PG_DB,
                      "--exit-on-error", str(src)])

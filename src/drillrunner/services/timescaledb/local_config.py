"""The local PostgreSQL members' Patroni files and the router in front of them: each
member's Patroni configuration (written on every `up()`), the cluster-wide settings Patroni
keeps in the DCS, the process specs of Patroni and of HAProxy (router.py).

PostgresDeployment (local.py) runs them; PgBackRestBackups (local_backup.py) and
PostgresFiles (local_files.py) below hold backups, layout and drill's PostgreSQL settings.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from drillrunner.services.etcd.local import MEMBERS as ETCD_MEMBERS
from drillrunner.services.timescaledb import patroni, router
from drillrunner.services.timescaledb.local_backup import PgBackRestBackups
from drillrunner.services.timescaledb.local_files import PG_USER, STANDING
from drillrunner.services.timescaledb.patroni_install import patroni_binary
from drillrunner.services.timescaledb.spec import PostgresSettings
from drillrunner.targets.local.supervisor import ProcessSpec

READY_TIMEOUT = 60.0
# Settings Patroni takes from the DCS only (they must match on every member).
CLUSTER_WIDE = {"max_connections", "max_wal_senders", "max_replication_slots", "wal_level",
                "max_worker_processes", "max_locks_per_transaction", "wal_log_hints",
                "max_prepared_transactions", "track_commit_timestamp", "wal_keep_size"}
# Managed by Patroni itself: drill must not set them.
PATRONI_OWNS = {"synchronous_standby_names", "hot_standby", "port", "listen_addresses",
                "unix_socket_directories"}


class PatroniFiles(PgBackRestBackups):
    """Where Patroni's files are, what they say, and how Patroni and the router start."""

    # -- layout ---------------------------------------------------------------------------

    @property
    def patroni_dir(self) -> Path:
        return self.root / "patroni"

    def api(self, member: str) -> str:
        return f"http://127.0.0.1:{self.settings.port(f'{member}-api')}"

    @cached_property
    def pg_settings(self) -> PostgresSettings:
        return self.settings.of(PostgresSettings)

    def timings(self) -> patroni.Timings:
        s = self.pg_settings
        return patroni.Timings(ttl=s.ttl, loop_wait=s.loop_wait, retry_timeout=s.retry_timeout)

    def predicted_failover(self) -> tuple[float, float]:
        return self.timings().predicted_failover()

    def _parameters(self) -> tuple[dict[str, str], dict[str, str]]:
        """drill's PostgreSQL settings, split into (cluster-wide, this member's)."""
        params = {k: v for k, v in self.parameters().items() if k not in PATRONI_OWNS}
        wide = {k: v for k, v in params.items() if k in CLUSTER_WIDE}
        wide["wal_log_hints"] = "on"  # pg_rewind needs it (or checksums) on every member
        return wide, {k: v for k, v in params.items() if k not in CLUSTER_WIDE}

    def dcs_config(self) -> dict[str, Any]:
        s = self.pg_settings
        wide, _ = self._parameters()
        return patroni.dynamic_config(self.timings(), synchronous=s.synchronous,
                                      maximum_lag=s.maximum_lag_on_failover,
                                      failsafe=s.failsafe_mode, parameters=wide)

    def config_path(self, member: str) -> Path:
        return self.patroni_dir / f"{member}.yml"

    def _member_config(self, member: str) -> dict[str, Any]:
        _, local = self._parameters()
        return patroni.member_config(
            name=member, api_port=self.settings.port(f"{member}-api"),
            pg_port=self.settings.port(member),
            etcd_hosts=[f"127.0.0.1:{self.settings.port(n)}" for n in ETCD_MEMBERS],
            data_dir=str(self.datadir(member)), bin_dir=str(self.bindir),
            sockets=str(self.sockets), pgpass=str(self.patroni_dir / f"{member}.pgpass"),
            dcs=self.dcs_config(), local_parameters=local,
        )

    def _write_config(self, member: str) -> bool:
        """Write the member's Patroni file; True if it changed."""
        path = self.config_path(member)
        text = "# Written by drill; every 'drill stack up' rewrites it.\n" + yaml.safe_dump(
            self._member_config(member), sort_keys=False)
        if path.exists() and path.read_text() == text:
            return False
        path.write_text(text)
        self._own(path, 0o600)
        return True

    def _patroni(self) -> str:
        return patroni_binary(self.settings.of(PostgresSettings).patroni)

    def patroni_spec(self, member: str) -> ProcessSpec:
        return ProcessSpec(name=member, argv=[self._patroni(), str(self.config_path(member))],
                           port=self.settings.port(f"{member}-api"),
                           log=self.logs / f"{member}.log", cwd=self.root, user=PG_USER)

    ROUTER = "tsdb-router"

    def router_port(self) -> int:
        """Where HAProxy routes to the current primary (router.py)."""
        return self.settings.port(self.ROUTER)

    def _router_spec(self) -> ProcessSpec:
        return ProcessSpec(name=self.ROUTER,
                           argv=[router.binary(), "-db", "-f", str(self.root / "haproxy.cfg")],
                           port=self.router_port(), log=self.logs / f"{self.ROUTER}.log",
                           cwd=self.root, user=PG_USER)

    def _start_router(self) -> None:
        path = self.root / "haproxy.cfg"
        members = [(n, self.settings.port(n), self.settings.port(f"{n}-api")) for n in STANDING]
        text = router.haproxy_config(self.router_port(), members)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            self.sup.stop(self.ROUTER)  # a running router reads its file only at start
        self.sup.start(self._router_spec(), ready_timeout=READY_TIMEOUT)

    def check_binaries(self) -> None:
        super().check_binaries()
        self._patroni()
        router.binary()

    def router_dsn(self, timeout: float = 2.0) -> str:
        return (f"host=127.0.0.1 port={self.router_port()} user={PG_USER} dbname=postgres "
                f"connect_timeout={max(1, round(timeout))}")


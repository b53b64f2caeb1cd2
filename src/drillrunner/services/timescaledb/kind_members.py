"""The TimescaleDB members on kind: names, paths and addresses shared by KindPostgresOps
(services/timescaledb/kind.py) and its point-in-time restore (kind_pitr.py)."""

from __future__ import annotations

import re
from pathlib import Path

from drillrunner.core.errors import ActionFailed
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.services.timescaledb.ops import SERVICE
from drillrunner.targets.base import MemberRef
from drillrunner.targets.kind.deployments import KindDeployment
from drillrunner.targets.pods import KindPods

STATEFULSET = "timescaledb"  # members timescaledb-0, timescaledb-1 (one Patroni cluster)
SCOPE = "timescaledb"  # Patroni's cluster name: its ConfigMaps are timescaledb-leader...
PRIMARY_SERVICE = "timescaledb-primary"  # selects Patroni's leader label
HEADLESS = "timescaledb-headless"
SECRET, PASSWORD_KEY = "timescaledb-credentials", "postgres-password"
CONFIGMAP = "timescaledb-patroni"  # patroni.yaml, pgbackrest.conf (deploy/k8s/timescaledb)
DCS_CONFIG = f"{SCOPE}-config"  # Patroni's live cluster-wide settings (annotation `config`)
PATRONI_CONF = "/etc/timescaledb/patroni.yaml"
PG_USER = "postgres"
DATA = "/home/postgres/pgdata"  # the data volume's mount point (PVC; pitr: ephemeral PVC)
PGDATA = f"{DATA}/data"  # Patroni's postgresql.data_dir
REPO = "/home/postgres/pgbackrest"  # the member's pgBackRest repository (its own PVC)
STANZA = "timescaledb"
PITR = "timescaledb-pitr-0"
PITR_CLAIM = f"{PITR}-data"  # the generic ephemeral volume's claim: <pod>-<volume>
ARCHIVE = f"{DATA}/wal-archive"  # the restore copy's archived segments (restore_command)
BACKUP_STAGE = f"{DATA}/drill-backup"  # pg_basebackup's output in the source pod, then removed
WAL_EXPORT = f"{DATA}/drill-wal-export.tar.gz"  # archived segments on their way out
WAL_STAGE = f"{DATA}/drill-wal-export"  # segments fetched from pgBackRest before packing
INCOMING = f"{DATA}/drill-incoming"  # the backup and the segments in the pitr pod
PITR_GATE = f"{DATA}/drill-restored"  # the pitr container starts PostgreSQL once it exists
SOCKETS = "/var/run/postgresql"
BACKUP_FILES = ("base.tar.gz", "pg_wal.tar.gz")  # pg_basebackup -Ft -z -X stream
CHUNK = 96 * 1024  # base64 per exec: one argv is at most 128 KiB
NAME_LABEL = "app.kubernetes.io/name"
# Patroni's pod label and its values (pinned in the StatefulSet's PATRONI_KUBERNETES_*).
ROLE_LABEL, LEADER_VALUE, FOLLOWER_VALUE = "role", "master", "replica"
PITR_LABEL = "drill.dev/role"  # `pitr` on the restore copy (no Patroni label: no Service)
READY_TIMEOUT = 180.0  # a new pod: scheduling, volume attach, crash recovery
QUERY_TIMEOUT = 30.0
STREAM_TIMEOUT = 60.0
SWITCHOVER_TIMEOUT = 60.0

# Run by the postgres user through exec: every process of that user in the pod's PID
# namespace but the caller and init (tests/unit/test_kind_postgres.py checks this in a real
# PID namespace). Nothing left to thaw is not an error.
PAUSE_SCRIPT = "kill -STOP -1"
RESUME_SCRIPT = "kill -CONT -1 2>/dev/null || true"

# Exit 1 (with a message) if a postgres process runs in the pod. With the shared process
# namespace /proc shows every process of the pod.
NO_POSTGRES = (
    'for c in /proc/[0-9]*/comm; do '
    'if [ "$(cat "$c" 2>/dev/null)" = postgres ]; then '
    'echo "a postgres process still runs in this pod" >&2; exit 1; fi; done')



def _quote(value: str) -> str:
    """A libpq conninfo value."""
    if value and not re.search(r"[\s'\\]", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def conninfo(**params: str | int) -> str:
    return " ".join(f"{k}={_quote(str(v))}" for k, v in params.items())


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def conf_value(conf: str, key: str) -> str | None:
    """The last value of `key` in a postgresql.conf text, unquoted."""
    found = None
    for line in conf.splitlines():
        name, sep, value = line.split("#", 1)[0].partition("=")
        if sep and name.strip() == key:
            found = value.strip().strip("'")
    return found


class KindPostgresMembers(KindDeployment):
    """The members' addresses and pods (the base of KindPostgresOps)."""

    def __init__(self, target: KindPods, service: str) -> None:
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
        return conninfo(host=ref.host, port=ref.port, user=PG_USER, password=self._secret(),
                         dbname="postgres", connect_timeout=max(1, round(timeout)))

    def cluster_dsn(self, timeout: float = 1.0) -> str:
        refs = [self._ref(m.name) for m in self.members()]
        return conninfo(host=",".join(r.host for r in refs),
                         port=",".join(str(r.port) for r in refs), user=PG_USER,
                         password=self._secret(), dbname="postgres",
                         target_session_attrs="read-write",
                         connect_timeout=max(1, round(timeout)))

    # -- pods -------------------------------------------------------------------------

    def _container_up(self, member: str) -> MemberRef:
        """Wait until the member's pod exists and its container runs (held or not)."""
        ref = self._ref(member)

        def up() -> bool:
            pod = self.target.pod(member)
            return pod is not None and not pod.deleting and pod.containers_running

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

    def _pod_labels(self) -> dict[str, tuple[dict[str, str], bool]]:
        """Each live pod of the service: its labels and whether it is Ready (one list)."""
        from drillrunner.targets.kind.lookup import ready

        pods = self.target.apis.core.list_namespaced_pod(
            self.target.namespace, label_selector=self.target.selector(SERVICE)).items
        return {p.metadata.name: (dict(p.metadata.labels or {}), ready(p)) for p in pods}

    def _marker(self, member: str) -> Path:
        return self.target.state / "timescaledb" / f"paused-{member}"

    def _wait_queries(self, member: str) -> None:
        import psycopg

        from drillrunner.services.timescaledb import sql

        poll_until(lambda: sql.fetch(self.dsn(member), "SELECT 1") == [(1,)],
                   timeout=QUERY_TIMEOUT, interval=0.2, what=f"{member} to accept queries",
                   retry_on=(psycopg.Error,))


def patroni_role(labels: dict[str, str] | None) -> str | None:
    """primary / replica from Patroni's pod label; None while it labels no role (starting,
    stopped, creating a replica)."""
    value = (labels or {}).get(ROLE_LABEL)
    if value in (LEADER_VALUE, "primary"):  # `primary`: Patroni 4's unpinned default
        return "primary"
    if value == FOLLOWER_VALUE:
        return "replica"
    return None

"""KindPostgresOps (PostgresOps on kind) against the fake Kubernetes API, with an exec
handler and a fake SQL layer that together model the two PostgreSQL pods."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import V1ObjectMeta, V1Service, V1ServiceSpec
from kubernetes.client.rest import ApiException

from drillrunner.core.errors import ActionFailed
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
from drillrunner.services.registry import REGISTRY
from drillrunner.services.timescaledb import faults, kind_members, kind_pitr, repair, sql
from drillrunner.services.timescaledb import kind as kp
from drillrunner.services.timescaledb.ops import PostgresOps, RoutesPrimary, pg_ops
from drillrunner.services.timescaledb.roles import member_roles
from drillrunner.targets.base import Signal
from drillrunner.targets.kind.apis import KubeApis
from drillrunner.targets.kind.target import KindTarget
from failfast import pg
from tests.support import missing
from tests.unit.kind_fakes import (
    ADAPTERS,
    BarePodCore,
    Cluster,
    FakeCore,
    apis,
    local_shell,
    pod,
)

P, R = "timescaledb-primary-0", "timescaledb-replica-0"
HOLD = "/var/lib/postgresql/data/drill-hold"  # the hold file the manifests declare
IPS = {P: "10.244.1.10", R: "10.244.2.20"}
PASSWORD = "pa ss'w\\rd"  # needs libpq quoting
QUOTED_PASSWORD = "password='pa ss\\'w\\\\rd'"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Member:
    """What one pod's PostgreSQL is doing (the PVC's hold file and data included)."""

    recovery: bool
    upstream: str | None = None
    hold: bool = False
    running: bool = True
    paused: bool = False
    sss: str = ""


@dataclass
class World:
    c: Cluster
    pg: dict[str, Member]
    scripts: list[tuple[str, str]] = field(default_factory=list)
    fail: dict[str, str] = field(default_factory=dict)  # script substring -> stderr
    services: dict[str, dict[str, str]] = field(default_factory=dict)

    def ready(self, name: str) -> None:
        m = self.pg[name]
        p = self.c.pods.get(name)
        if p is not None:
            p.status.conditions[0].status = "True" if m.running and not m.paused else "False"

    # -- the pods' shells ----------------------------------------------------------------

    def exec(self, pod_name: str, container: str, argv: list[str],
             stdin: str | None) -> tuple[int, str, str]:
        assert argv[:2] == ["sh", "-c"] and container == "timescaledb"
        script = argv[2]
        self.scripts.append((pod_name, script))
        for needle, err in self.fail.items():
            if needle in script:
                return 1, "", err
        m = self.pg[pod_name]
        if "pg_basebackup" in script:
            assert m.hold and not m.running, "cloned while postgres runs or unheld"
            found = re.search(r"host=(\S+)\.timescaledb-headless", script)
            assert found is not None
            m.recovery, m.upstream, m.sss = True, found.group(1), ""
            m.hold, m.running = False, True
        elif f"touch {HOLD}" in script:
            m.hold = True
        elif f"rm -f {HOLD}" in script:
            m.hold, m.running = False, True  # the wrapper execs postgres
        elif "kill -INT" in script:
            m.running = False
        elif "kill -STOP -1" in script:
            m.paused = True
        elif "kill -CONT -1" in script:
            m.paused = False
        self.ready(pod_name)
        return 0, "", ""

    # -- SQL -----------------------------------------------------------------------------

    def member_of(self, dsn: str) -> str:
        host = re.search(r"host=(\S+)", dsn)
        assert host is not None
        return {ip: n for n, ip in IPS.items()}[host.group(1)]

    def fetch(self, dsn: str, query: str, params: Any = (), timeout: float = 2.0) -> list[Any]:
        import psycopg

        assert QUOTED_PASSWORD in dsn  # every connection carries the Secret's password
        name = self.member_of(dsn)
        m = self.pg[name]
        if not m.running or m.paused:
            raise psycopg.OperationalError(f"connection to {name} failed")
        if query == "SELECT 1":
            return [(1,)]
        if query == "SELECT pg_is_in_recovery()":
            return [(m.recovery,)]
        if query.startswith("ALTER SYSTEM SET synchronous_standby_names = "):
            m.sss = query.split("= ", 1)[1].strip("'")
            return []
        if query == "SELECT pg_reload_conf()":
            return [(True,)]
        if query == "SHOW synchronous_standby_names":
            return [(m.sss,)]
        if query.startswith("SELECT application_name, state"):
            return [(n, "streaming", "sync" if f'"{n}"' in m.sss else "async", 0.0, 0.0, 0.1)
                    for n, o in self.pg.items()
                    if o.upstream == name and o.running and not o.paused]
        if query.startswith("SELECT pg_wal_lsn_diff"):
            return [(0,)]
        if query.startswith("SELECT pg_promote"):
            m.recovery, m.upstream = False, None
            return [(True,)]
        raise AssertionError(f"unexpected query {query!r}")

    def execute_bounded(self, conn: Any, query: str, params: Any, timeout: float) -> list[Any]:
        m = self.pg[self.member_of(conn.dsn)]
        if m.recovery or not m.running:
            raise sql.Rejected("read-only")
        return []


class Conn:
    def __init__(self, dsn: str, *a: Any, **k: Any) -> None:
        self.dsn = dsn

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class Core(FakeCore):
    """FakeCore plus Services, and pods recreated as the manifests' wrapper would run them."""

    def __init__(self, world: World) -> None:
        super().__init__(world.c)
        self.w = world

    def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> None:
        super().delete_namespaced_pod(name, namespace, **kwargs)
        m = self.w.pg[name]
        m.running, m.paused = not m.hold, False  # the new pod waits while held
        self.w.ready(name)

    def read_namespaced_service(self, name: str, namespace: str) -> V1Service:
        self.c.log("read_namespaced_service", name, namespace)
        if name not in self.w.services:
            raise ApiException(status=404, reason="Not Found")
        return V1Service(metadata=V1ObjectMeta(name=name),
                         spec=V1ServiceSpec(selector=dict(self.w.services[name])))

    def patch_namespaced_service(self, name: str, namespace: str,
                                 body: dict[str, Any]) -> None:
        self.c.log("patch_namespaced_service", name, namespace, body)
        sel = self.w.services[name]
        for k, v in body["spec"]["selector"].items():
            if v is None:
                sel.pop(k, None)
            else:
                sel[k] = v


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    c = Cluster(recreate=True)
    for name, ip in IPS.items():
        p = pod(name, "timescaledb", port=5432, hold=HOLD)
        p.status.pod_ip = ip
        c.pods[name] = p
    c.secrets["timescaledb-credentials"] = {"postgres-password": PASSWORD}
    c.configmaps["timescaledb-config"] = {
        "postgresql.conf": "shared_preload_libraries = 'timescaledb'\n",
        "synchronous_standby_names": '"timescaledb-replica-0"'}
    w = World(c, {P: Member(recovery=False, sss='"timescaledb-replica-0"'),
                  R: Member(recovery=True, upstream=P)})
    w.services["timescaledb-primary"] = dict(kp.ORIGINAL_SELECTOR)
    monkeypatch.setattr(sql, "fetch", w.fetch)
    monkeypatch.setattr(pg, "fetch", w.fetch)  # what sql.fetch_value calls
    monkeypatch.setattr(sql, "connect", Conn)
    monkeypatch.setattr(sql, "execute_bounded", w.execute_bounded)
    for module in (kp, kind_members, kind_pitr):
        monkeypatch.setattr(module, "READY_TIMEOUT", 2.0)
    return w


def make(world: World, tmp_path: Path) -> tuple[KindTarget, kp.KindPostgresOps]:
    a = apis(world.c, world.exec)
    t = KindTarget(KubeApis(core=Core(world), apps=a.apps, networking=a.networking,
                            version=a.version, stream=a.stream),
                   adapters=ADAPTERS, context="kind-drill", state=tmp_path, forward=False)
    ops = kp.KindPostgresOps(t, "timescaledb")
    t._deployments["timescaledb"] = ops  # what the adapters give (tested on its own)
    return t, ops


def ctx_for(t: KindTarget) -> tuple[RunContext, list[tuple[str, dict[str, Any]]]]:
    undos: list[tuple[str, dict[str, Any]]] = []
    ctx = RunContext(target=t, scenario="s", history=History(), record=lambda *a, **k: None,
                     _undo_sink=lambda n, a: undos.append((n, a)))
    return ctx, undos


def test_registered_and_implements_the_protocols(world: World, tmp_path: Path) -> None:
    assert REGISTRY.adapters("kind")["timescaledb"] == \
        "drillrunner.services.timescaledb.kind:KindPostgresOps"
    t, ops = make(world, tmp_path)
    assert isinstance(ops, PostgresOps) and isinstance(ops, RoutesPrimary)
    assert pg_ops(t) is ops
    fresh = KindTarget(apis(world.c), adapters=ADAPTERS, context="kind-drill", state=tmp_path,
                       forward=False)
    assert type(pg_ops(fresh)) is kp.KindPostgresOps


def test_dsns_use_member_addresses_and_the_secret_read_once(world: World,
                                                           tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    dsn = ops.dsn(P, timeout=3.4)
    assert dsn.startswith(f"host={IPS[P]} port=5432 user=postgres {QUOTED_PASSWORD}")
    assert dsn.endswith("dbname=postgres connect_timeout=3")
    cluster = ops.cluster_dsn()
    assert f"host={IPS[P]},{IPS[R]} port=5432,5432" in cluster
    assert "target_session_attrs=read-write" in cluster
    assert [c[0] for c in world.c.calls].count("read_namespaced_secret") == 1
    import psycopg

    assert psycopg.conninfo.conninfo_to_dict(dsn)["password"] == PASSWORD


def test_settings_come_from_the_configmap(world: World, tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    assert ops.synchronous_wanted() and ops.timescaledb_installed()
    world.c.configmaps["timescaledb-config"] = {
        "synchronous_standby_names": "",
        "postgresql.conf": "shared_preload_libraries = 'pg_stat_statements'\n"}
    assert not ops.synchronous_wanted() and not ops.timescaledb_installed()


def test_kill_holds_the_member_down_until_start(world: World, tmp_path: Path) -> None:
    t, ops = make(world, tmp_path)
    ops.kill(P, Signal.KILL)
    assert world.scripts[0] == (P, f"touch {HOLD}")
    # SIGKILL of every postgres process before the delete (whose SIGTERM is a smart
    # shutdown that would keep serving open sessions).
    assert world.scripts[1] == (P, "kill -KILL -1 2>/dev/null || true")
    deletes = [c for c in world.c.calls if c[0] == "delete_namespaced_pod"]
    assert deletes == [("delete_namespaced_pod", (P, "drill"), {"grace_period_seconds": 0})]
    assert world.pg[P].hold and not t.is_running(t.member("timescaledb", P))
    assert P in [m.name for m in t.members("timescaledb")]  # still a member: undo finds it
    assert member_roles(t) == {P: "down", R: "replica"}
    ops.kill(P, Signal.KILL)  # again: still held, no error
    ops.start_member(P)
    ops.start_member(P)  # idempotent
    assert not world.pg[P].hold and member_roles(t) == {P: "primary", R: "replica"}
    assert world.services["timescaledb-primary"] == kp.ORIGINAL_SELECTOR
    assert not [c for c in world.c.calls if c[0] == "patch_namespaced_service"]


def test_term_thaws_then_shuts_down_fast_and_deletes_gracefully(world: World,
                                                                tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    ops.pause(R)
    ops.kill(R, Signal.TERM)
    scripts = [s for _, s in world.scripts]
    i = scripts.index("kill -CONT -1 2>/dev/null || true")
    assert scripts[i + 1] == f"touch {HOLD}" and "kill -INT" in scripts[i + 2]
    assert [c for c in world.c.calls if c[0] == "delete_namespaced_pod"][-1][2] == {}
    assert not ops.is_paused(R)


def test_failover_routes_the_service_and_the_undo_rebuilds(world: World,
                                                           tmp_path: Path) -> None:
    """The driver's own faults and undos: kill the primary, promote, heal twice."""
    t, _ = make(world, tmp_path)
    ctx, undos = ctx_for(t)
    faults.kill_primary(ctx, signal=Signal.KILL)
    result = faults.promote_replica(ctx)
    assert result.members == [R] and result.detail["synchronous_degraded"]
    assert world.pg[R].sss == ""  # degraded before the promotion
    assert world.services["timescaledb-primary"] == {
        "app.kubernetes.io/name": "timescaledb", "statefulset.kubernetes.io/pod-name": R}
    assert undos == [("timescaledb.rebuild_replica", {"member": P}),
                     ("timescaledb.heal_replicas", {})]
    out = repair.rebuild_replica(ctx, member=P)
    assert "rebuilt" in out.summary and out.detail["synchronous"]
    clone = next(s for n, s in world.scripts if n == P and "pg_basebackup" in s)
    assert f"host={R}.timescaledb-headless" in clone
    assert f"application_name={P}" in clone and "PASSWORD" in clone
    assert PASSWORD not in clone and "sed -i '/^synchronous_standby_names/d'" in clone
    assert f"rm -rf {kp.PGDATA} {kp.ARCHIVE}" in clone  # no archive of a lost history
    assert world.pg[P].upstream == R and world.pg[R].sss == f'"{P}"'
    assert member_roles(t) == {P: "replica", R: "primary"}
    patches = len([c for c in world.c.calls if c[0] == "patch_namespaced_service"])
    for _ in range(2):  # idempotent: already streams, nothing rebuilt or repatched
        assert "already streams" in repair.heal_replicas(ctx).summary
    assert len([s for _, s in world.scripts if "pg_basebackup" in s]) == 1
    assert len([c for c in world.c.calls if c[0] == "patch_namespaced_service"]) == patches
    # Failing back routes the Service to the manifest's own selector again.
    t.apis.core.delete_namespaced_pod(R, "drill")  # R crashes (not held: it restarts)
    world.pg[R].running = False
    world.ready(R)
    faults.promote_replica(ctx)
    assert world.services["timescaledb-primary"] == kp.ORIGINAL_SELECTOR


def test_pause_survives_readiness_loss_and_resume_is_idempotent(world: World,
                                                                tmp_path: Path) -> None:
    t, ops = make(world, tmp_path)
    ctx, undos = ctx_for(t)
    faults.pause_member(ctx, member=R)
    assert (R, "kill -STOP -1") in world.scripts
    assert not t.is_running(t.member("timescaledb", R))  # its probes hang: NotReady
    assert member_roles(t)[R] == "paused" and ops.is_paused(R)
    assert undos == [("timescaledb.resume_member", {"member": R})]
    for _ in range(2):
        assert repair.resume_member(ctx, member=R).summary == f"resumed {R}"
        assert not ops.is_paused(R) and member_roles(t)[R] == "replica"
    ops.kill(P)
    with pytest.raises(ActionFailed, match=f"{P} is not running"):
        ops.pause(P)


def test_a_recreated_pod_is_not_paused(world: World, tmp_path: Path) -> None:
    t, ops = make(world, tmp_path)
    ops.pause(R)
    t.apis.core.delete_namespaced_pod(R, "drill")
    assert not ops.is_paused(R)
    ops.resume(R)
    ops.resume(R)


def test_failures_name_the_pod_and_leave_it_held(world: World, tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    with pytest.raises(ActionFailed, match=r"refusing to rebuild .* it is the primary"):
        ops.rebuild_replica(P, P)
    world.fail["pg_basebackup"] = "pg_basebackup: error: connection refused"
    with pytest.raises(ActionFailed, match=rf"{R}: cloning {R} from {P} .*exit 1.*refused"):
        ops.rebuild_replica(R, P)
    assert world.pg[R].hold  # stays down; a retry of the undo rebuilds it
    del world.fail["pg_basebackup"]
    ops.rebuild_replica(R, P)
    assert not world.pg[R].hold and world.pg[R].upstream == P
    del world.c.pods[R]
    world.c.recreate = False
    with pytest.raises(ActionFailed, match=f"{R}: no running pod"):
        ops.start_member(R)
    ops.resume(R)  # no pod: nothing to thaw, no error
    ops.resume_process(R, 42)


def test_set_synchronous_on_a_down_member_says_so(world: World, tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    ops.set_synchronous(P, False)
    assert world.pg[P].sss == ""
    ops.set_synchronous(P, True)
    assert world.pg[P].sss == f'"{R}"'
    ops.kill(R)
    with pytest.raises(ActionFailed, match=f"{R} is not running"):
        ops.set_synchronous(R, True)


def test_service_missing_is_a_clear_failure(world: World, tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    del world.services["timescaledb-primary"]
    with pytest.raises(ActionFailed, match="no Service timescaledb-primary"):
        ops.route_primary(R)


def test_only_the_restore_copy_can_be_removed(world: World, tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    assert ops.pitr_member().name == kp.PITR
    assert ops.remove_member(kp.PITR) is False  # nothing there: no exec, no delete
    with pytest.raises(ActionFailed, match="not a temporary member"):
        ops.remove_member(P)
    assert not [c for c in world.c.calls if c[0] in ("exec", "delete_namespaced_pod")]


def _proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_process_scripts_signal_postgres_processes_only(world: World, tmp_path: Path) -> None:
    """pause_process / resume_process really run here: only a process whose comm is
    'postgres' is signalled."""
    world.c.recreate = False
    t = KindTarget(apis(world.c, local_shell), adapters=ADAPTERS, context="kind-drill",
                   state=tmp_path,
                   forward=False)
    ops = kp.KindPostgresOps(t, "timescaledb")
    fake_pg = tmp_path / "postgres"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake_pg)
    other = subprocess.Popen(["sleep", "30"])
    server = subprocess.Popen([str(fake_pg), "30"])
    try:
        with pytest.raises(ActionFailed, match=rf"{R}: freezing pid {other.pid}.*not a "
                           "postgres process"):
            ops.pause_process(R, other.pid)
        ops.resume_process(R, other.pid)  # left alone
        ops.pause_process(R, server.pid)
        time.sleep(0.1)
        assert _proc_state(server.pid) == "T" and _proc_state(other.pid) != "T"
        ops.resume_process(R, server.pid)
        time.sleep(0.1)
        assert _proc_state(server.pid) != "T"
    finally:
        for p in (other, server):
            p.kill()
            p.wait()


def _wrapper(manifest: str) -> tuple[dict[str, Any], list[str]]:
    docs = [d for d in yaml.safe_load_all((REPO / "deploy/k8s/timescaledb" / manifest)
                                          .read_text()) if d]
    spec = docs[0]["spec"]["template"]["spec"]
    return spec, spec["containers"][0]["command"] + spec["containers"][0]["args"]


@pytest.mark.parametrize("manifest", ["primary.yaml", "replica.yaml"])
def test_manifest_wrapper_holds_then_runs_the_entrypoint(manifest: str,
                                                         tmp_path: Path) -> None:
    """The container command really waits while the hold file exists (run here with the
    paths pointed at a temp folder), then execs the image's entrypoint with the args."""
    spec, argv = _wrapper(manifest)
    assert spec["shareProcessNamespace"] is True
    assert HOLD in argv[2] and argv[3:5] == ["sh", "postgres"]
    live = spec["containers"][0]["livenessProbe"]["exec"]["command"]
    assert HOLD in live[2]
    hold = tmp_path / "drill-hold"
    hold.touch()
    (tmp_path / "docker-entrypoint.sh").write_text('#!/bin/sh\necho "entrypoint $*"\n')
    (tmp_path / "docker-entrypoint.sh").chmod(0o755)
    script = argv[2].replace(HOLD, str(hold)).replace("sleep 1", "sleep 0.05")
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    proc = subprocess.Popen(["sh", "-c", script, *argv[3:]], env=env, text=True,
                            stdout=subprocess.PIPE)
    time.sleep(0.3)
    assert proc.poll() is None  # held
    hold.unlink()
    out, _ = proc.communicate(timeout=5)
    assert out.startswith("entrypoint postgres -c config_file=/etc/timescaledb/postgresql.conf")


def test_pause_script_freezes_everything_but_init_in_a_pid_namespace(tmp_path: Path) -> None:
    """Why the manifests share the pod's PID namespace: kill -1 skips the namespace's init
    (and the caller). Here init plays the pod's pause process and a child plays the
    postmaster, as with shareProcessNamespace; without it the postmaster WOULD be init."""
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        missing("no permission to create a PID namespace here (unshare --pid; run as root)")
    # Poll (bounded) for the state the signal should bring; print whatever it is then.
    script = f"""
state() {{ cut -d' ' -f3 /proc/$1/stat; }}
settle() {{
  i=0; while [ "$(state $1)" $2 "$3" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
}}
sleep 30 & pg=$!
sh -c {shlex.quote(kp.PAUSE_SCRIPT)}
settle $pg != T
echo "$(state 1) $(state $pg)"
sh -c {shlex.quote(kp.RESUME_SCRIPT)}
settle $pg = T
echo "$(state $pg)"
kill $pg
"""
    out = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
                         capture_output=True, text=True, timeout=20, check=True).stdout
    assert out.split() == ["S", "T", "S"]  # init runs, the "postmaster" froze, then thawed


# -- point-in-time restore -----------------------------------------------------------------
# Every script of the PITR path really runs here (local_shell), with the pods' data volume
# (kp.DATA) pointed at one temp folder per pod and fake pg_basebackup / psql /
# pg_archivecleanup on PATH; the SQL layer stays the World's.

REPL_PASSWORD = "repl-secret-9"
START = "000000010000000000000003"
TARGET = "2026-01-01 12:00:00.123456+00"
ARCHIVED = ["000000010000000000000002", START, "000000010000000000000004",
            "00000002.history", "000000010000000000000005.tmp"]

FAKE_TOOLS = {
    # The files pg_basebackup -Ft -z -X stream writes; it records the password it got.
    "pg_basebackup": """#!/bin/sh
set -eu
while [ $# -gt 0 ]; do case "$1" in -D) dir=$2; shift 2;; *) shift;; esac; done
printf %s "${PGPASSWORD:-}" > "$dir.password-seen"
mkdir -p "$dir/src/pg_wal" "$dir/wal"
printf 'START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\\n' > "$dir/src/backup_label"
echo 16 > "$dir/src/PG_VERSION"
touch "$dir/src/standby.signal" "$dir/src/postmaster.pid"
echo seg3 > "$dir/wal/000000010000000000000003"
tar -czf "$dir/base.tar.gz" -C "$dir/src" \\
    backup_label PG_VERSION standby.signal postmaster.pid pg_wal
tar -czf "$dir/pg_wal.tar.gz" -C "$dir/wal" 000000010000000000000003
echo '{"PostgreSQL-Backup-Manifest-Version": 1}' > "$dir/backup_manifest"
rm -rf "$dir/src" "$dir/wal"
""",
    "psql": '#!/bin/sh\necho "${FAKE_ARCHIVE_MODE:-on}"\n',
    "pg_archivecleanup": """#!/bin/sh
cd "$1" && ls | awk -v k="$2" 'length($0) == 24 && substr($0, 9) < substr(k, 9)' | xargs -r rm -f
""",
}


class PitrCore(Core, BarePodCore):
    """The PostgreSQL world's Core plus bare pods; a deleted restore pod loses its volume."""

    def __init__(self, world: World, volume: Path) -> None:
        super().__init__(world)
        self.volume = volume
        self.pending = False  # created pods never get a running container

    def create_namespaced_pod(self, namespace: str, body: dict[str, Any]) -> Any:
        new = super().create_namespaced_pod(namespace, body)
        if self.pending:
            new.status.phase = "Pending"
        return new

    def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> None:
        if name in self.bare:
            BarePodCore.delete_namespaced_pod(self, name, namespace, **kwargs)
            self.w.pg.pop(name, None)
            shutil.rmtree(self.volume, ignore_errors=True)
            return
        super().delete_namespaced_pod(name, namespace, **kwargs)


@dataclass
class Pitr:
    world: World
    t: KindTarget
    ops: kp.KindPostgresOps
    core: PitrCore
    roots: dict[str, Path]
    argvs: list[list[str]] = field(default_factory=list)
    recovery: str = "promotes"  # what the released copy does: "promotes" or "crashes"

    def exec(self, pod_name: str, container: str, argv: list[str],
             stdin: str | None) -> tuple[int, str, str]:
        assert container == "timescaledb" and argv[:2] == ["sh", "-c"]
        self.argvs.append(argv)
        root = self.roots[pod_name]
        root.mkdir(exist_ok=True)
        script = argv[2].replace(kp.DATA, str(root))
        done = local_shell(pod_name, container, ["sh", "-c", script], stdin)
        released = pod_name == kp.PITR and (root / "drill-restored").exists()
        if released and kp.PITR not in self.world.pg:
            if self.recovery == "crashes":
                self.world.c.pods[kp.PITR].status.phase = "Failed"
            else:  # consistent, Ready, and at once past the target and promoted
                self.world.pg[kp.PITR] = Member(recovery=False)
                self.world.ready(kp.PITR)
        return done


@pytest.fixture
def pitr(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pitr:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, text in FAKE_TOOLS.items():
        (tools / name).write_text(text)
        (tools / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    monkeypatch.setenv("REPLICATION_PASSWORD", REPL_PASSWORD)  # as in the primary's pod
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setitem(IPS, kp.PITR, BarePodCore.bare_ip)
    roots = {n: tmp_path / "pods" / n for n in (P, R, kp.PITR)}
    (roots[P] / "wal-archive").mkdir(parents=True)
    for name in ARCHIVED:
        (roots[P] / "wal-archive" / name).write_text(name)

    fetch, execute = sql.fetch, sql.execute_bounded  # the World's (the fixture set them)

    def pitr_fetch(dsn: str, query: str, params: Any = (), timeout: float = 2.0) -> list[Any]:
        if query == "SELECT clock_timestamp()::text":
            return [(TARGET,)]
        if "pg_stat_archiver" in query:
            return [(True, "000000010000000000000004")]
        return fetch(dsn, query, params, timeout)

    def pitr_execute(conn: Any, query: str, params: Any, timeout: float) -> list[Any]:
        rows = execute(conn, query, params, timeout)
        return [("000000010000000000000004",)] if "pg_switch_wal" in query else rows

    monkeypatch.setattr(sql, "fetch", pitr_fetch)
    monkeypatch.setattr(pg, "fetch", pitr_fetch)
    monkeypatch.setattr(sql, "execute_bounded", pitr_execute)
    core = PitrCore(world, roots[kp.PITR])
    holder: list[Pitr] = []
    a = apis(world.c, lambda *args: holder[0].exec(*args))
    t = KindTarget(KubeApis(core=core, apps=a.apps, networking=a.networking,
                            version=a.version, stream=a.stream),
                   adapters=ADAPTERS, context="kind-drill", state=tmp_path / "state", forward=False)
    ops = kp.KindPostgresOps(t, "timescaledb")
    t._deployments["timescaledb"] = ops
    holder.append(Pitr(world, t, ops, core, roots))
    return holder[0]


def _created_body(world: World) -> dict[str, Any]:
    bodies = [c[1][1] for c in world.c.calls if c[0] == "create_namespaced_pod"]
    assert bodies
    body: dict[str, Any] = bodies[-1]
    return body


def test_pitr_scenario_runs_on_kind(pitr: Pitr, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scenario's steps (backup, mark, restore, undo twice) through the driver."""
    from drillrunner.services.timescaledb import backup

    w, t, ops, roots = pitr.world, pitr.t, pitr.ops, pitr.roots
    ctx, undos = ctx_for(t)
    order: list[str] = []

    def spy(owner: Any, name: str) -> None:
        real = getattr(owner, name)

        def wrapped(*a: Any, **k: Any) -> Any:
            if not (name == "switch_and_archive" and order[-1:] == [name]):
                order.append(name)
            return real(*a, **k)
        monkeypatch.setattr(owner, name, wrapped)
    out = backup.base_backup(ctx)
    dest = Path(out.detail["path"])
    assert out.members == [P] and dest.parent == t.artifacts_dir()
    assert sorted(p.name for p in dest.iterdir()) == ["backup_manifest", "base.tar.gz",
                                                      "pg_wal.tar.gz"]
    assert (roots[P] / "drill-backup.password-seen").read_text() == REPL_PASSWORD
    assert not (roots[P] / "drill-backup").exists()  # staged in the pod, then removed
    assert sorted(p.name for p in (roots[P] / "wal-archive").iterdir()) == sorted(
        ARCHIVED[1:])  # pruned: older than the backup's start segment
    backup.mark_restore_point(ctx)
    for owner, name in ((ops, "stage_restore"), (backup, "switch_and_archive"),
                        (ops, "restore_pitr")):
        spy(owner, name)
    result = backup.restore_pitr(ctx, timeout=5.0)
    assert result.members == [kp.PITR] and undos == [
        ("timescaledb.remove_pitr_member", {})]
    assert result.detail["target_time"] == TARGET
    # The pod and the base backup were staged before the clock started; the timed part
    # is the WAL export, its upload, the unpacking and the recovery.
    assert result.detail["backup_staged_before_timing"] is True
    assert order == ["stage_restore", "switch_and_archive", "restore_pitr"]

    data = roots[kp.PITR] / "pgdata"
    assert sorted(p.name for p in data.iterdir()) == [
        "PG_VERSION", "backup_label", "pg_wal", "recovery.signal"]
    assert [p.name for p in (data / "pg_wal").iterdir()] == [START]
    assert sorted(p.name for p in (roots[kp.PITR] / "wal-archive").iterdir()) == sorted([
        "00000002.history", START, "000000010000000000000004"])  # no .tmp leftover
    assert not (roots[kp.PITR] / "drill-incoming").exists()
    assert (roots[kp.PITR] / "drill-restored").exists()

    body = _created_body(w)
    args = body["spec"]["containers"][0]["args"]
    assert f"recovery_target_time={TARGET}" in args and "archive_mode=off" in args
    assert f"restore_command=cp {kp.ARCHIVE}/%f %p" in args
    assert body["spec"]["containers"][0]["image"] == "timescaledb:1"  # the primary's
    # The copy is no member: roles, the cluster DSN, routing and rebuilds leave it out.
    assert member_roles(t) == {P: "primary", R: "replica"}
    assert [m.name for m in ops.members()] == [P, R]
    assert BarePodCore.bare_ip not in ops.cluster_dsn()
    assert kp.PITR in [m.name for m in t.members("timescaledb")]  # found by its labels
    assert ops.pitr_member().host == BarePodCore.bare_ip
    with pytest.raises(ActionFailed, match=f"refusing to route .* to {kp.PITR}"):
        ops.route_primary(kp.PITR)
    with pytest.raises(ActionFailed, match=f"{kp.PITR} is a temporary restore copy"):
        ops.rebuild_replica(kp.PITR, P)
    assert w.services["timescaledb-primary"] == kp.ORIGINAL_SELECTOR

    assert backup.remove_pitr_member(ctx).summary == f"removed {kp.PITR}"
    assert backup.remove_pitr_member(ctx).summary == f"{kp.PITR} was not there"
    assert kp.PITR not in w.c.pods and not roots[kp.PITR].exists()
    deletes = [c for c in w.c.calls if c[0] == "delete_namespaced_pod"]
    assert deletes == [("delete_namespaced_pod", (kp.PITR, "drill"),
                        {"grace_period_seconds": 0})]
    # No password in any argv or in the pod (only the containers' environment has it).
    for argv in pitr.argvs:
        assert PASSWORD not in " ".join(argv) and REPL_PASSWORD not in " ".join(argv)
    assert PASSWORD not in repr(body) and REPL_PASSWORD not in repr(body)


def test_a_second_restore_replaces_the_copy(pitr: Pitr, tmp_path: Path) -> None:
    backup = pitr.ops.base_backup(P, tmp_path / "b")
    first = pitr.ops.restore_pitr(backup, TARGET)
    (pitr.roots[kp.PITR] / "leftover").touch()
    second = pitr.ops.restore_pitr(backup, TARGET)
    assert first.name == second.name == kp.PITR
    assert not (pitr.roots[kp.PITR] / "leftover").exists()  # a fresh volume
    assert [c[0] for c in pitr.world.c.calls].count("create_namespaced_pod") == 2


def test_the_restore_pod_passes_the_manifest_audit(pitr: Pitr, tmp_path: Path) -> None:
    from drillrunner.audit import Resource, evaluate

    pitr.ops.restore_pitr(pitr.ops.base_backup(P, tmp_path / "b"), TARGET)
    body = _created_body(pitr.world)
    labels = body["metadata"]["labels"]
    assert labels["drill.dev/role"] == "pitr" and labels["drill.dev/member-kind"] == "restore"
    assert body["spec"]["shareProcessNamespace"] is True
    assert labels["app.kubernetes.io/part-of"] == "drill-stack"

    def findings(b: dict[str, Any]) -> list[str]:
        res = Resource("Pod", "drill", kp.PITR, b, "restore_pitr")
        return [f"{r.rule.name}: {f.message}" for r in evaluate([res]) for f in r.findings]

    assert findings(body) == []
    # The rules do read a bare Pod: its data on an emptyDir would be flagged.
    bad = yaml.safe_load(yaml.safe_dump(body))
    bad["spec"]["volumes"][0] = {"name": "data", "emptyDir": {}}
    del bad["spec"]["containers"][0]["livenessProbe"]
    assert [f.split(":")[0] for f in findings(bad)] == ["probes-declared", "data-on-pvc"]


def test_pitr_failures_name_the_pod(pitr: Pitr, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ops, w = pitr.ops, pitr.world
    monkeypatch.setenv("FAKE_ARCHIVE_MODE", "off")
    with pytest.raises(ActionFailed, match=rf"{P}: pg_basebackup of {P} failed .*"
                       "archive_mode is off"):
        ops.base_backup(P, tmp_path / "off")
    monkeypatch.delenv("FAKE_ARCHIVE_MODE")
    with pytest.raises(ActionFailed, match="is not a base backup taken on kind"):
        ops.restore_pitr(tmp_path / "off", TARGET)
    good = ops.base_backup(P, tmp_path / "b")
    with pytest.raises(ActionFailed, match="is not empty"):
        ops.base_backup(P, good)
    for f in (pitr.roots[P] / "wal-archive").iterdir():
        f.unlink()
    with pytest.raises(ActionFailed, match=rf"{P}: packing {P}'s archived WAL .*no "
                       f"archived WAL segment from {START} on"):
        ops.restore_pitr(good, TARGET)
    (pitr.roots[P] / "wal-archive" / START).write_text("x")
    pitr.recovery = "crashes"
    with pytest.raises(ActionFailed, match=rf"{kp.PITR}: PostgreSQL exited during "
                       r"recovery \(pod Failed\):\nline1"):
        ops.restore_pitr(good, TARGET)
    assert ops.remove_member(kp.PITR) is True and ops.remove_member(kp.PITR) is False
    for module in (kp, kind_members, kind_pitr):
        monkeypatch.setattr(module, "READY_TIMEOUT", 0.3)
    pitr.core.pending = True
    with pytest.raises(ActionFailed, match=rf"{kp.PITR}: no running pod .*not scheduled"):
        ops.restore_pitr(good, TARGET)
    monkeypatch.setattr(pitr.core, "delete_namespaced_pod", lambda *a, **k: None)
    with pytest.raises(ActionFailed, match=rf"{kp.PITR}: still there"):
        ops.remove_member(kp.PITR)
    assert w.services["timescaledb-primary"] == kp.ORIGINAL_SELECTOR


def test_restore_gate_and_liveness_scripts(tmp_path: Path) -> None:
    """The restore container waits for the gate, then execs the entrypoint with the args;
    its liveness passes while gated, starting up (pg_isready exit 1), not when down (2)."""
    body = kp.pitr_pod("drill", "timescale/timescaledb:2.17.2-pg16", TARGET)
    c = body["spec"]["containers"][0]
    gate = tmp_path / "drill-restored"
    (tmp_path / "docker-entrypoint.sh").write_text('#!/bin/sh\necho "entrypoint $*"\n')
    (tmp_path / "docker-entrypoint.sh").chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    script = c["command"][2].replace(kp.PITR_GATE, str(gate))
    proc = subprocess.Popen(["sh", "-c", script, *c["command"][3:], *c["args"]], env=env,
                            text=True, stdout=subprocess.PIPE)
    time.sleep(0.3)
    assert proc.poll() is None  # gated
    gate.touch()
    out, _ = proc.communicate(timeout=5)
    assert out.startswith("entrypoint postgres -c config_file=/etc/timescaledb/")
    assert f"recovery_target_time={TARGET} " in out
    live = [a.replace(kp.PITR_GATE, str(gate)) for a in c["livenessProbe"]["exec"]["command"]]
    isready = tmp_path / "pg_isready"
    for code, alive in ((0, True), (1, True), (2, False)):
        isready.write_text(f"#!/bin/sh\nexit {code}\n")
        isready.chmod(0o755)
        assert (subprocess.run(live, env=env, check=False).returncode == 0) is alive
    gate.unlink()
    assert subprocess.run(live, env=env, check=False).returncode == 0  # gated: alive


def test_start_segment_reads_the_backup_label(tmp_path: Path) -> None:
    import io
    import tarfile

    path = tmp_path / "base.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        text = f"START WAL LOCATION: 0/3000028 (file {START})\n".encode()
        info = tarfile.TarInfo("backup_label")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
    assert kp.start_segment(path) == START
    with pytest.raises(ActionFailed, match="no readable backup_label"):
        kp.start_segment(tmp_path / "missing.tar.gz")
    with pytest.raises(ActionFailed, match="not a WAL segment name"):
        kp.export_wal_script("x; rm -rf /")


def test_first_start_init_runs_without_synchronous_replication() -> None:
    """The image's init runs a temporary server on postgresql.conf with no network: with a
    synchronous standby named there, its commits would wait forever. The name is applied
    by 10-roles.sh (ALTER SYSTEM) from the ConfigMap key the primary gets as env."""
    import yaml

    root = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "timescaledb"
    cm = next(yaml.safe_load_all((root / "configmap.yaml").read_text()))["data"]
    assert "synchronous_standby_names" not in cm["postgresql.conf"]
    assert cm["synchronous_standby_names"] == '"timescaledb-replica-0"'
    assert "ALTER SYSTEM SET synchronous_standby_names = '${SYNCHRONOUS_STANDBY_NAMES}'" \
        in cm["10-roles.sh"]
    sts = next(d for d in yaml.safe_load_all((root / "primary.yaml").read_text())
               if d["kind"] == "StatefulSet")
    env = {e["name"]: e for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SYNCHRONOUS_STANDBY_NAMES"]["valueFrom"]["configMapKeyRef"] == {
        "name": "timescaledb-config", "key": "synchronous_standby_names"}

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

from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
from drillrunner.errors import ActionFailed
from drillrunner.services.timescaledb import faults, repair, sql
from drillrunner.services.timescaledb.ops import PostgresOps, RoutesPrimary, pg_ops
from drillrunner.services.timescaledb.roles import member_roles
from drillrunner.targets.base import Signal
from drillrunner.targets.kind import postgres as kp
from drillrunner.targets.kind.apis import KubeApis
from drillrunner.targets.kind.target import DEPLOYMENTS, KindTarget
from tests.unit.kind_fakes import Cluster, FakeCore, apis, local_shell, pod

P, R = "timescaledb-primary-0", "timescaledb-replica-0"
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
        elif f"touch {kp.HOLD}" in script:
            m.hold = True
        elif f"rm -f {kp.HOLD}" in script:
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
        p = pod(name, "timescaledb", port=5432)
        p.status.pod_ip = ip
        c.pods[name] = p
    c.secrets["timescaledb-credentials"] = {"postgres-password": PASSWORD}
    c.configmaps["timescaledb-config"] = {"postgresql.conf": (
        "shared_preload_libraries = 'timescaledb'\n"
        "synchronous_standby_names = '\"timescaledb-replica-0\"'  # the replica\n")}
    w = World(c, {P: Member(recovery=False, sss='"timescaledb-replica-0"'),
                  R: Member(recovery=True, upstream=P)})
    w.services["timescaledb-primary"] = dict(kp.ORIGINAL_SELECTOR)
    monkeypatch.setattr(sql, "fetch", w.fetch)
    monkeypatch.setattr(sql, "connect", Conn)
    monkeypatch.setattr(sql, "execute_bounded", w.execute_bounded)
    monkeypatch.setattr(kp, "READY_TIMEOUT", 2.0)
    return w


def make(world: World, tmp_path: Path) -> tuple[KindTarget, kp.KindPostgresOps]:
    a = apis(world.c, world.exec)
    t = KindTarget(KubeApis(core=Core(world), apps=a.apps, networking=a.networking,
                            version=a.version, stream=a.stream),
                   context="kind-drill", state=tmp_path, forward=False)
    ops = kp.KindPostgresOps(t, "timescaledb")
    t._deployments["timescaledb"] = ops  # what DEPLOYMENTS gives (tested on its own)
    return t, ops


def ctx_for(t: KindTarget) -> tuple[RunContext, list[tuple[str, dict[str, Any]]]]:
    undos: list[tuple[str, dict[str, Any]]] = []
    ctx = RunContext(target=t, scenario="s", history=History(), record=lambda *a, **k: None,
                     _undo_sink=lambda n, a: undos.append((n, a)))
    return ctx, undos


def test_registered_and_implements_the_protocols(world: World, tmp_path: Path) -> None:
    assert DEPLOYMENTS["timescaledb"] == "drillrunner.targets.kind.postgres:KindPostgresOps"
    t, ops = make(world, tmp_path)
    assert isinstance(ops, PostgresOps) and isinstance(ops, RoutesPrimary)
    assert pg_ops(t) is ops
    fresh = KindTarget(apis(world.c), context="kind-drill", state=tmp_path, forward=False)
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
    world.c.configmaps["timescaledb-config"]["postgresql.conf"] = (
        "synchronous_standby_names = ''\nshared_preload_libraries = 'pg_stat_statements'\n")
    assert not ops.synchronous_wanted() and not ops.timescaledb_installed()


def test_kill_holds_the_member_down_until_start(world: World, tmp_path: Path) -> None:
    t, ops = make(world, tmp_path)
    ops.kill(P, Signal.KILL)
    assert world.scripts[0] == (P, f"touch {kp.HOLD}")
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
    assert scripts[i + 1] == f"touch {kp.HOLD}" and "kill -INT" in scripts[i + 2]
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


def test_pitr_is_refused_with_the_reason(world: World, tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    with pytest.raises(ActionFailed, match="archive no WAL"):
        ops.base_backup(P, tmp_path / "b")
    with pytest.raises(ActionFailed, match="point-in-time restore is not supported on kind"):
        ops.restore_pitr(tmp_path / "b", "2026-01-01")
    assert ops.pitr_member().name == kp.PITR
    assert ops.remove_member(kp.PITR) is False
    with pytest.raises(ActionFailed, match="not a temporary member"):
        ops.remove_member(P)
    assert not [c for c in world.c.calls if c[0] == "exec"]


def _proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_process_scripts_signal_postgres_processes_only(world: World, tmp_path: Path) -> None:
    """pause_process / resume_process really run here: only a process whose comm is
    'postgres' is signalled."""
    world.c.recreate = False
    t = KindTarget(apis(world.c, local_shell), context="kind-drill", state=tmp_path,
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
    assert kp.HOLD in argv[2] and argv[3:5] == ["sh", "postgres"]
    live = spec["containers"][0]["livenessProbe"]["exec"]["command"]
    assert kp.HOLD in live[2]
    hold = tmp_path / "drill-hold"
    hold.touch()
    (tmp_path / "docker-entrypoint.sh").write_text('#!/bin/sh\necho "entrypoint $*"\n')
    (tmp_path / "docker-entrypoint.sh").chmod(0o755)
    script = argv[2].replace(kp.HOLD, str(hold)).replace("sleep 1", "sleep 0.05")
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
        pytest.skip("no permission to create a PID namespace here")
    script = f"""
sleep 30 & pg=$!
sh -c {shlex.quote(kp.PAUSE_SCRIPT)}
sleep 0.2
echo "$(cut -d' ' -f3 /proc/1/stat) $(cut -d' ' -f3 /proc/$pg/stat)"
sh -c {shlex.quote(kp.RESUME_SCRIPT)}
sleep 0.2
echo "$(cut -d' ' -f3 /proc/$pg/stat)"
kill $pg
"""
    out = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script],
                         capture_output=True, text=True, timeout=20, check=True).stdout
    assert out.split() == ["S", "T", "S"]  # init runs, the "postmaster" froze, then thawed

"""KindPostgresOps (PostgresOps on kind, under Patroni) against the fake Kubernetes API,
with an exec handler and a fake SQL layer that together model the two members' pods and
what their Patroni does with the pods' labels."""

from __future__ import annotations

import json
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
from kubernetes.client import V1ConfigMap, V1ObjectMeta
from kubernetes.client.rest import ApiException

from drillrunner.core.errors import ActionFailed
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import History
from drillrunner.services.registry import REGISTRY
from drillrunner.services.timescaledb import kind as kp
from drillrunner.services.timescaledb import kind_members, kind_pitr, sql
from drillrunner.services.timescaledb.ops import PostgresOps, pg_ops
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

P, R = "timescaledb-0", "timescaledb-1"  # P starts as Patroni's leader
HOLD = "/home/postgres/pgdata/drill-hold"  # the hold file the manifest declares
IPS = {P: "10.244.1.10", R: "10.244.2.20"}
PASSWORD = "pa ss'w\\rd"  # needs libpq quoting
QUOTED_PASSWORD = "password='pa ss\\'w\\\\rd'"
REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "deploy" / "k8s" / "timescaledb"
PATRONI_YAML = (MANIFESTS / "configmap.yaml")


def manifest_docs() -> list[dict[str, Any]]:
    return [d for f in sorted(MANIFESTS.glob("*.yaml")) if f.name != "kustomization.yaml"
            for d in yaml.safe_load_all(f.read_text()) if d]


def manifest(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in manifest_docs()
                if d["kind"] == kind and d["metadata"]["name"] == name)


@dataclass
class Member:
    """What one pod's Patroni and PostgreSQL are doing (the PVC's hold file included)."""

    recovery: bool
    upstream: str | None = None
    hold: bool = False
    running: bool = True
    paused: bool = False


@dataclass
class World:
    c: Cluster
    pg: dict[str, Member]
    scripts: list[tuple[str, str]] = field(default_factory=list)
    fail: dict[str, str] = field(default_factory=dict)  # script substring -> stderr
    dcs: dict[str, Any] | None = None  # Patroni's live config (timescaledb-config)

    def sync(self, name: str) -> None:
        """What the kubelet and Patroni make of a member: Ready while it runs unfrozen;
        Patroni labels a running member with its role and a frozen one keeps its label."""
        m = self.pg[name]
        p = self.c.pods.get(name)
        if p is None:
            return
        up = m.running and not m.paused
        p.status.conditions[0].status = "True" if up else "False"
        if m.paused or name not in (P, R):  # frozen: stale label; the restore copy: none
            return
        labels = p.metadata.labels
        if m.running:
            labels["role"] = "replica" if m.recovery else "master"
        else:
            labels.pop("role", None)

    def patroni_failover(self) -> None:
        """The leader lock expired: Patroni promotes the running replica."""
        leader = next(n for n, m in self.pg.items() if not m.recovery)
        new = next(n for n, m in self.pg.items()
                   if n != leader and m.running and not m.paused)
        self.pg[leader].recovery, self.pg[leader].upstream = True, new
        self.pg[new].recovery, self.pg[new].upstream = False, None
        for n in self.pg:
            self.sync(n)

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
        out = ""
        if script.startswith("patronictl"):
            out = self.patronictl(pod_name, shlex.split(script))
        elif "/cluster" in script:
            out = json.dumps({"members": [
                {"name": n, "role": "replica" if o.recovery else "leader",
                 "state": "running" if o.running else "stopped"}
                for n, o in self.pg.items()]})
        elif f"touch {HOLD}" in script:
            m.hold = True
        elif f"rm -f {HOLD}" in script:
            m.hold, m.running = False, True  # the wrapper execs Patroni
        elif "kill -KILL -1" in script:
            m.running = False
        elif "kill -STOP -1" in script:
            m.paused = True
        elif "kill -CONT -1" in script:
            m.paused = False
        self.sync(pod_name)
        return 0, out, ""

    def patronictl(self, pod_name: str, argv: list[str]) -> str:
        assert argv[1:3] == ["-c", "/etc/timescaledb/patroni.yaml"] and argv[4] == "timescaledb"
        assert "--force" in argv
        if argv[3] == "switchover":
            leader = argv[argv.index("--leader") + 1]
            assert leader == pod_name and not self.pg[leader].recovery
            self.patroni_failover()
            return "Successfully switched over"
        assert argv[3] == "reinit" and "--wait" in argv
        member = argv[5]
        assert self.pg[member].running, "reinit needs the member's Patroni running"
        leader = next(n for n, o in self.pg.items() if not o.recovery)
        self.pg[member].recovery, self.pg[member].upstream = True, leader
        return "Success: reinitialize for member " + member

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
        if query.startswith("SELECT application_name, state"):
            return [(n, "streaming", "sync", 0.0, 0.0, 0.1)
                    for n, o in self.pg.items()
                    if o.upstream == name and o.running and not o.paused]
        if query.startswith("SELECT pg_wal_lsn_diff"):
            return [(0,)]
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
    """FakeCore whose pods are recreated as the manifest's wrapper would run them, and
    Patroni's own ConfigMap (its settings in the annotation `config`)."""

    def __init__(self, world: World) -> None:
        super().__init__(world.c)
        self.w = world

    def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> None:
        super().delete_namespaced_pod(name, namespace, **kwargs)
        m = self.w.pg[name]
        m.running, m.paused = not m.hold, False  # the new pod waits while held
        self.w.sync(name)

    def read_namespaced_config_map(self, name: str, namespace: str) -> Any:
        if name != "timescaledb-config":
            return super().read_namespaced_config_map(name, namespace)
        self.c.log("read_namespaced_config_map", name, namespace)
        if self.w.dcs is None:
            raise ApiException(status=404, reason="Not Found")
        return V1ConfigMap(metadata=V1ObjectMeta(
            name=name, annotations={"config": json.dumps(self.w.dcs)}))


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    c = Cluster(recreate=True)
    for name, ip in IPS.items():
        p = pod(name, "timescaledb", port=5432, hold=HOLD)
        p.status.pod_ip = ip
        c.pods[name] = p
    c.secrets["timescaledb-credentials"] = {"postgres-password": PASSWORD}
    cm = next(yaml.safe_load_all(PATRONI_YAML.read_text()))
    c.configmaps["timescaledb-patroni"] = dict(cm["data"])  # the manifest's own
    w = World(c, {P: Member(recovery=False), R: Member(recovery=True, upstream=P)})
    for name in IPS:
        w.sync(name)
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


def test_registered_and_implements_the_protocol(world: World, tmp_path: Path) -> None:
    assert REGISTRY.adapters("kind")["timescaledb"] == \
        "drillrunner.services.timescaledb.kind:KindPostgresOps"
    t, ops = make(world, tmp_path)
    assert isinstance(ops, PostgresOps)
    # The Services select Patroni's label: nothing for drill to repoint.
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


def test_settings_come_from_patroni(world: World, tmp_path: Path) -> None:
    """synchronous_mode: Patroni's live settings once the cluster exists, else the
    manifest's bootstrap; the preload from Patroni's postgresql.parameters."""
    _, ops = make(world, tmp_path)
    assert ops.synchronous_wanted() and ops.timescaledb_installed()
    assert ops.predicted_failover() == (20.0, 40.0)  # the manifest's ttl 30, loop_wait 10
    world.dcs = {"synchronous_mode": False, "ttl": 30}
    assert not ops.synchronous_wanted()  # changed with patronictl edit-config
    world.dcs = {"ttl": 12, "loop_wait": 2}
    assert ops.predicted_failover() == (10.0, 14.0)  # the live settings win
    world.dcs = {"synchronous_mode": True}
    assert ops.synchronous_wanted()
    world.dcs = None
    text = world.c.configmaps["timescaledb-patroni"]["patroni.yaml"]
    world.c.configmaps["timescaledb-patroni"]["patroni.yaml"] = text.replace(
        "synchronous_mode: true", "synchronous_mode: false").replace(
        "shared_preload_libraries: timescaledb", "shared_preload_libraries: pg_stat_statements")
    assert not ops.synchronous_wanted() and not ops.timescaledb_installed()


def test_roles_come_from_patroni_labels_and_readiness(world: World, tmp_path: Path) -> None:
    t, ops = make(world, tmp_path)
    assert ops.patroni_roles() == {P: "primary", R: "replica"} == member_roles(t)
    assert ops.leader() == P
    # A stale label on a pod that is not Ready (Patroni dead) is no role.
    world.c.pods[R].status.conditions[0].status = "False"
    assert ops.patroni_roles()[R] == "down"
    world.sync(R)
    # Patroni 4's unpinned default leader value reads as the primary too.
    world.c.pods[P].metadata.labels["role"] = "primary"
    assert ops.patroni_roles()[P] == "primary"
    del world.c.pods[P].metadata.labels["role"]  # starting, or creating a replica
    assert ops.patroni_roles()[P] == "down" and ops.leader() is None


def test_kill_holds_the_leader_down_and_patroni_promotes(world: World,
                                                       tmp_path: Path) -> None:
    t, ops = make(world, tmp_path)
    ops.kill(P, Signal.KILL)
    assert world.scripts[0] == (P, f"touch {HOLD}")
    # SIGKILL of every process (Patroni too) before the delete, whose SIGTERM would let
    # Patroni hand the lock over cleanly: a crash leaves the lock to expire.
    assert world.scripts[1] == (P, "kill -KILL -1 2>/dev/null || true")
    deletes = [c for c in world.c.calls if c[0] == "delete_namespaced_pod"]
    assert deletes == [("delete_namespaced_pod", (P, "drill"), {"grace_period_seconds": 0})]
    assert world.pg[P].hold and not t.is_running(t.member("timescaledb", P))
    assert P in [m.name for m in t.members("timescaledb")]  # still a member: undo finds it
    assert "role" not in world.c.pods[P].metadata.labels  # a new pod: no Patroni yet
    assert ops.patroni_roles() == {P: "down", R: "replica"}
    world.patroni_failover()  # the lock expired (ttl)
    assert ops.patroni_roles() == {P: "down", R: "primary"}
    ops.kill(P, Signal.KILL)  # again: still held, no error
    ops.start_member(P)
    ops.start_member(P)  # idempotent
    assert not world.pg[P].hold
    assert ops.patroni_roles() == {P: "replica", R: "primary"} == member_roles(t)
    # drill never relabels pods or repoints Services: Patroni's labels do it.
    assert not [c for c in world.c.calls if c[0].startswith("patch_namespaced")]


def test_term_thaws_then_deletes_gracefully(world: World, tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    ops.pause(R)
    ops.kill(R, Signal.TERM)
    scripts = [s for _, s in world.scripts]
    i = scripts.index("kill -CONT -1 2>/dev/null || true")
    assert scripts[i + 1] == f"touch {HOLD}"
    assert "kill -KILL -1 2>/dev/null || true" not in scripts  # Patroni stops cleanly
    assert [c for c in world.c.calls if c[0] == "delete_namespaced_pod"][-1][2] == {}
    assert not ops.is_paused(R)


def test_start_member_waits_for_patroni_to_label_it(world: World, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _, ops = make(world, tmp_path)
    ops.kill(R)
    real_sync = world.sync

    def patroni_never_runs(name: str) -> None:
        real_sync(name)
        world.c.pods[name].metadata.labels.pop("role", None)
        world.c.pods[name].status.conditions[0].status = "True"  # Ready, yet no role

    monkeypatch.setattr(world, "sync", patroni_never_runs)
    with pytest.raises(ActionFailed, match=f"{R}: Patroni labels no role on the pod"):
        ops._wait_patroni(R, timeout=0.5)


def test_switchover_runs_patronictl_in_the_leader_pod(world: World, tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    assert ops.switchover() == R
    pod_name, script = next((n, s) for n, s in world.scripts if s.startswith("patronictl"))
    assert pod_name == P and shlex.split(script) == [
        "patronictl", "-c", "/etc/timescaledb/patroni.yaml", "switchover", "timescaledb",
        "--leader", P, "--force"]
    assert ops.switchover(candidate=P) == P
    assert "--candidate" in world.scripts[-1][1] and world.scripts[-1][0] == R
    with pytest.raises(ActionFailed, match="cannot take over from the leader"):
        ops.switchover(candidate=P)  # it leads already
    with pytest.raises(ActionFailed, match="cannot take over"):
        ops.switchover(candidate="x; rm -rf /")
    ops.kill(P)
    ops.kill(R)
    with pytest.raises(ActionFailed, match="no single Patroni leader"):
        ops.switchover()


def test_switchover_that_moves_nothing_fails(world: World, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _, ops = make(world, tmp_path)
    monkeypatch.setattr(world, "patroni_failover", lambda: None)  # Patroni refuses
    with pytest.raises(ActionFailed, match=f"switchover from {P}: no new leader"):
        ops.switchover(timeout=0.5)


def test_rebuild_replica_is_patronis_reinit(world: World, tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    with pytest.raises(ActionFailed, match=r"refusing to rebuild .* it is the primary"):
        ops.rebuild_replica(P, P)
    with pytest.raises(ActionFailed, match=f"{kp.PITR} is a temporary restore copy"):
        ops.rebuild_replica(kp.PITR, P)
    ops.kill(R)  # held down: released first, Patroni must run to reinitialize it
    ops.rebuild_replica(R, P)
    assert not world.pg[R].hold and world.pg[R].upstream == P
    assert [s for n, s in world.scripts if n == R][-2] == f"rm -f {HOLD}"
    pod_name, script = [(n, s) for n, s in world.scripts if "reinit" in s][-1]
    assert pod_name == R and shlex.split(script)[3:] == ["reinit", "timescaledb", R,
                                                         "--force", "--wait"]
    world.fail["reinit"] = "Error: member is not running"
    with pytest.raises(ActionFailed, match=rf"{R}: patronictl reinit of {R} .*not running"):
        ops.rebuild_replica(R, P)


def test_cluster_state_is_patronis_view(world: World, tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    state = ops.cluster_state()
    assert {m["name"]: m["role"] for m in state} == {P: "leader", R: "replica"}
    assert [n for n, s in world.scripts if "/cluster" in s] == [P]
    ops.pause(P)  # a frozen member is skipped: the next one answers
    ops.cluster_state()
    assert [n for n, s in world.scripts if "/cluster" in s] == [P, R]
    world.fail["/cluster"] = "connection refused"
    assert ops.cluster_state() == []


def test_pause_freezes_and_resume_is_idempotent(world: World, tmp_path: Path) -> None:
    t, ops = make(world, tmp_path)
    ops.pause(P)
    assert (P, "kill -STOP -1") in world.scripts
    assert not t.is_running(t.member("timescaledb", P))  # its probes hang: NotReady
    assert world.c.pods[P].metadata.labels["role"] == "master"  # stale: Patroni is frozen
    assert ops.patroni_roles()[P] == "paused" and member_roles(t)[P] == "paused"
    for _ in range(2):
        ops.resume(P)
        assert not ops.is_paused(P) and ops.patroni_roles()[P] == "primary"
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


def test_a_missing_pod_is_a_clear_failure(world: World, tmp_path: Path) -> None:
    _, ops = make(world, tmp_path)
    ops.dsn(R)  # addressed earlier in the run (a port-forward that outlives the pod)
    del world.c.pods[R]
    world.c.recreate = False
    with pytest.raises(ActionFailed, match=f"{R}: no running pod"):
        ops.start_member(R)
    ops.resume(R)  # no pod: nothing to thaw, no error
    ops.resume_process(R, 42)


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


def test_manifest_wrapper_holds_then_runs_patroni(tmp_path: Path) -> None:
    """The container command really waits while the hold file exists (run here with the
    paths pointed at a temp folder), then execs Patroni on the mounted configuration."""
    spec = manifest("StatefulSet", "timescaledb")["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert spec["shareProcessNamespace"] is True and c["name"] == "timescaledb"
    argv = c["command"]
    assert HOLD in argv[2]
    live = c["livenessProbe"]["exec"]["command"]
    assert HOLD in live[2] and "/liveness" in live[2]
    hold = tmp_path / "drill-hold"
    hold.touch()
    (tmp_path / "patroni").write_text('#!/bin/sh\necho "patroni $*"\n')
    (tmp_path / "patroni").chmod(0o755)
    script = (argv[2].replace(HOLD, str(hold)).replace("sleep 1", "sleep 0.05")
              .replace("/home/postgres/pgdata/data", str(tmp_path / "data")))
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    proc = subprocess.Popen(["sh", "-c", script], env=env, text=True,
                            stdout=subprocess.PIPE)
    time.sleep(0.3)
    assert proc.poll() is None  # held
    hold.unlink()
    out, _ = proc.communicate(timeout=5)
    assert out == "patroni /etc/timescaledb/patroni.yaml\n"
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    # Held: alive without asking Patroni (none runs); otherwise Patroni's /liveness.
    hold.touch()
    assert subprocess.run([*live[:2], live[2].replace(HOLD, str(hold))],
                          check=False).returncode == 0
    hold.unlink()
    assert subprocess.run([*live[:2], live[2].replace(HOLD, str(hold))],
                          check=False, capture_output=True).returncode != 0


def test_manifests_give_patroni_the_kubernetes_dcs() -> None:
    """What the adapter relies on: Patroni's scope and labels, the pinned leader label
    value the Services select, HTTP probes on Patroni's API, synchronous mode, a bounded
    lag on failover, WAL archived by pgBackRest."""
    sts = manifest("StatefulSet", "timescaledb")
    tmpl = sts["spec"]["template"]
    c = tmpl["spec"]["containers"][0]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    assert env["PATRONI_SCOPE"] == "timescaledb" == tmpl["metadata"]["labels"]["cluster-name"]
    assert env["PATRONI_KUBERNETES_USE_ENDPOINTS"] == "false"
    assert env["PATRONI_KUBERNETES_LEADER_LABEL_VALUE"] == kind_members.LEADER_VALUE
    assert env["PATRONI_KUBERNETES_FOLLOWER_LABEL_VALUE"] == kind_members.FOLLOWER_VALUE
    assert env["PATRONI_KUBERNETES_POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    labels = yaml.safe_load(env["PATRONI_KUBERNETES_LABELS"])
    assert labels.items() <= tmpl["metadata"]["labels"].items()
    assert env["PATRONI_SUPERUSER_PASSWORD"]["secretKeyRef"]["key"] == "postgres-password"
    assert c["readinessProbe"]["httpGet"] == {"path": "/readiness", "port": 8008}
    assert tmpl["spec"]["serviceAccountName"] == "timescaledb"
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert tmpl["metadata"]["annotations"]["drill.dev/hold-file"] == HOLD
    conf = yaml.safe_load(manifest("ConfigMap", "timescaledb-patroni")["data"]["patroni.yaml"])
    dcs = conf["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True and dcs["maximum_lag_on_failover"] > 0
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    params = dcs["postgresql"]["parameters"]
    assert params["archive_mode"] == "on" and "pgbackrest" in params["archive_command"]
    assert "archive-push" in params["archive_command"]
    assert conf["postgresql"]["data_dir"] == kp.PGDATA


def test_services_select_patronis_labels() -> None:
    tmpl = manifest("StatefulSet", "timescaledb")["spec"]["template"]["metadata"]["labels"]
    primary = manifest("Service", "timescaledb-primary")["spec"]["selector"]
    replicas = manifest("Service", "timescaledb-replicas")["spec"]["selector"]
    assert primary["role"] == "master" and replicas["role"] == "replica"
    for selector in (primary, replicas):
        rest = {k: v for k, v in selector.items() if k != "role"}
        assert rest.items() <= tmpl.items()  # the pods, once Patroni labels them
    assert "role" not in tmpl  # only Patroni sets it


def test_pause_script_freezes_everything_but_init_in_a_pid_namespace(tmp_path: Path) -> None:
    """Why the manifest shares the pod's PID namespace: kill -1 skips the namespace's init
    (and the caller). Here init plays the pod's pause process and a child plays Patroni
    or the postmaster, as with shareProcessNamespace; without it Patroni WOULD be init."""
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
# (kp.DATA) pointed at one temp folder per pod, the leader's pgBackRest repository
# (kind_members.REPO) at another, and fake pg_basebackup / psql / pgbackrest on PATH; the
# SQL layer stays the World's.

REPL_PASSWORD = "repl-secret-9"
START = "000000010000000000000003"
TARGET = "2026-01-01 12:00:00.123456+00"
# The repository's archive as pgBackRest lays it out: <segment>-<sha1>.<compression>
# under <pg version>-<n>/<timeline+log>/, history files beside them; a partial segment
# is no segment.
ARCHIVED = ["15-1/0000000100000000/000000010000000000000002-1b2c.lz4",
            f"15-1/0000000100000000/{START}-aa11.lz4",
            "15-1/0000000100000000/000000010000000000000004-bb22.lz4",
            "15-1/00000002.history",
            "15-1/0000000100000000/000000010000000000000005.partial-cc33.lz4"]

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
    # archive-get NAME DEST: the repository file of that segment (or history), as is.
    "pgbackrest": """#!/bin/sh
set -eu
[ "$1" = --stanza=timescaledb ] && [ "$2" = archive-get ] || exit 9
f=$(find "$FAKE_REPO/archive/timescaledb" -type f \\( -name "$3" -o -name "$3-*" \\) | head -n1)
[ -n "$f" ] || { echo "unable to find $3 in the archive" >&2; exit 1; }
cp "$f" "$4"
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
        script = (argv[2].replace(kp.DATA, str(root))
                  .replace(kind_members.REPO, str(root / "pgbackrest")))
        done = local_shell(pod_name, container, ["sh", "-c", script], stdin)
        released = pod_name == kp.PITR and (root / "drill-restored").exists()
        if released and kp.PITR not in self.world.pg:
            if self.recovery == "crashes":
                self.world.c.pods[kp.PITR].status.phase = "Failed"
            else:  # consistent, Ready, and at once past the target and promoted
                self.world.pg[kp.PITR] = Member(recovery=False)
                self.world.sync(kp.PITR)
        return done


@pytest.fixture
def pitr(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pitr:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, text in FAKE_TOOLS.items():
        (tools / name).write_text(text)
        (tools / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    monkeypatch.setenv("PATRONI_REPLICATION_PASSWORD", REPL_PASSWORD)  # as in the pods
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setitem(IPS, kp.PITR, BarePodCore.bare_ip)
    roots = {n: tmp_path / "pods" / n for n in (P, R, kp.PITR)}
    archive = roots[P] / "pgbackrest" / "archive" / "timescaledb"
    for name in ARCHIVED:
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        (archive / name).write_text(name)
    monkeypatch.setenv("FAKE_REPO", str(roots[P] / "pgbackrest"))

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
    # The repository is pgBackRest's: drill prunes nothing there.
    archive = roots[P] / "pgbackrest" / "archive" / "timescaledb"
    assert sorted(str(p.relative_to(archive)) for p in archive.rglob("*") if p.is_file()
                  ) == sorted(ARCHIVED)
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

    data = roots[kp.PITR] / "data"
    assert sorted(p.name for p in data.iterdir()) == [
        "PG_VERSION", "backup_label", "pg_wal", "recovery.signal"]
    assert [p.name for p in (data / "pg_wal").iterdir()] == [START]
    assert sorted(p.name for p in (roots[kp.PITR] / "wal-archive").iterdir()) == sorted([
        "00000002.history", START, "000000010000000000000004"])  # no partial segment
    assert not (roots[kp.PITR] / "drill-incoming").exists()
    assert (roots[kp.PITR] / "drill-restored").exists()

    body = _created_body(w)
    args = body["spec"]["containers"][0]["args"]
    assert f"recovery_target_time={TARGET}" in args and "archive_mode=off" in args
    assert f"restore_command=cp {kp.ARCHIVE}/%f %p" in args
    assert body["spec"]["containers"][0]["image"] == "timescaledb:1"  # the primary's
    assert "-c" in args and "shared_preload_libraries=timescaledb" in args
    assert args[:2] == ["-D", kp.PGDATA]
    # The copy is no member: roles, the cluster DSN and rebuilds leave it out.
    assert member_roles(t) == {P: "primary", R: "replica"} == ops.patroni_roles()
    assert "role" not in w.c.pods[kp.PITR].metadata.labels  # no Service selects it
    assert [m.name for m in ops.members()] == [P, R]
    assert BarePodCore.bare_ip not in ops.cluster_dsn()
    assert kp.PITR in [m.name for m in t.members("timescaledb")]  # found by its labels
    assert ops.pitr_member().host == BarePodCore.bare_ip
    with pytest.raises(ActionFailed, match=f"{kp.PITR} is a temporary restore copy"):
        ops.rebuild_replica(kp.PITR, P)

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
    repo = pitr.roots[P] / "pgbackrest"
    shutil.rmtree(repo / "archive")
    with pytest.raises(ActionFailed, match=rf"{P}: packing {P}'s archived WAL .*no "
                       "pgBackRest WAL archive"):
        ops.restore_pitr(good, TARGET)
    (repo / "archive" / "timescaledb" / "15-1").mkdir(parents=True)
    with pytest.raises(ActionFailed, match=rf"{P}: packing {P}'s archived WAL .*no "
                       f"archived WAL segment from {START} on"):
        ops.restore_pitr(good, TARGET)
    (repo / "archive" / "timescaledb" / "15-1" / f"{START}-ff.lz4").write_text("x")
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
    assert not [c for c in w.c.calls if c[0].startswith("patch_namespaced")]


def test_restore_gate_and_liveness_scripts(tmp_path: Path) -> None:
    """The restore container waits for the gate, then execs PostgreSQL with the args;
    its liveness passes while gated, starting up (pg_isready exit 1), not when down (2)."""
    body = kp.pitr_pod("drill", "timescale/timescaledb-ha:pg15.8-ts2.17.2", TARGET)
    c = body["spec"]["containers"][0]
    gate = tmp_path / "drill-restored"
    (tmp_path / "postgres").write_text('#!/bin/sh\necho "postgres $*"\n')
    (tmp_path / "postgres").chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    script = c["command"][2].replace(kp.PITR_GATE, str(gate))
    proc = subprocess.Popen(["sh", "-c", script, *c["command"][3:], *c["args"]], env=env,
                            text=True, stdout=subprocess.PIPE)
    time.sleep(0.3)
    assert proc.poll() is None  # gated
    gate.touch()
    out, _ = proc.communicate(timeout=5)
    assert out.startswith(f"postgres -D {kp.PGDATA} -c archive_mode=off ")
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


def test_post_bootstrap_creates_the_roles_from_the_environment(tmp_path: Path) -> None:
    """Patroni runs it once with a superuser connection string as $1: the applications'
    roles and databases, their passwords from the container's environment only."""
    script = manifest("ConfigMap", "timescaledb-patroni")["data"]["post_bootstrap.sh"]
    conf = yaml.safe_load(manifest("ConfigMap", "timescaledb-patroni")["data"]["patroni.yaml"])
    assert conf["bootstrap"]["post_bootstrap"] == "sh /etc/timescaledb/post_bootstrap.sh"
    (tmp_path / "psql").write_text('#!/bin/sh\necho "psql $*"; cat\n')
    (tmp_path / "psql").chmod(0o755)
    out = subprocess.run(["sh", "-c", script, "sh", "host=/var/run/postgresql user=postgres"],
                         env={"PATH": f"{tmp_path}:/usr/bin:/bin", "FEAST_PASSWORD": "f1",
                              "OMS_PASSWORD": "o2"},
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("psql -v ON_ERROR_STOP=1 host=/var/run/postgresql user=postgres")
    assert "CREATE ROLE feast LOGIN ENCRYPTED PASSWORD 'f1'" in out
    assert "CREATE DATABASE oms OWNER oms" in out and "'o2'" in out
    assert "f1" not in script

"""KindFeastOps against the kind fakes: the registry dumped and restored through the
TimescaleDB primary pod (an exec handler models its schema and /tmp), the feast CLI run
in a feast pod, the feature server scaled as a StatefulSet."""

from __future__ import annotations

import base64
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateTerminated,
    V1ContainerStatus,
)

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.services.feast import canary
from drillrunner.services.feast import http as feast_http
from drillrunner.services.feast.kind import KindFeastOps
from drillrunner.services.feast.ops import FeastOps
from drillrunner.targets.kind.target import KindTarget
from tests.unit.kind_fakes import ADAPTERS, Cluster, pod, scaling_apis, statefulset

CONFIGMAP = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "feast" / "configmap.yaml"
DUMP = bytes(range(256)) * 40  # a custom-format dump is binary
SECRET = "feast-pw-123"


class Pods:
    """The pods' side of exec: the primary's registry schema and files, the CLI runs."""

    def __init__(self) -> None:
        self.schema: bytes | None = DUMP
        self.files: dict[str, bytes] = {}
        self.in_recovery = {"timescaledb-primary-0": "f", "timescaledb-replica-0": "t"}
        self.cli: list[tuple[str, str]] = []
        self.dump_fails = False

    def __call__(self, pod_name: str, container: str, argv: list[str],
                 stdin: str | None) -> tuple[int, str, str]:
        if argv[:2] == ["psql", "-U"] and argv[-1] == "SELECT pg_is_in_recovery()":
            return 0, self.in_recovery[pod_name] + "\n", ""
        assert argv[:2] == ["sh", "-c"], argv
        script = argv[2]
        if pod_name.startswith("feast-"):
            self.cli.append((pod_name, script))
            return 0, "Applying...\nconnecting with password=hunter2\nDone\n", ""
        assert pod_name == "timescaledb-primary-0", "the registry lives on the primary"
        if "pg_dump" in script:
            if self.schema is None or self.dump_fails:
                return 1, "", "pg_dump: error: no matching schemas were found"
            return 0, base64.encodebytes(self.schema).decode(), ""
        words = shlex.split(script)
        if words[:2] == [":", ">"]:
            self.files[words[2]] = b""
        elif words[0] == "printf":
            self.files[words[-1]] += base64.b64decode(words[2])
        elif words[0] == "mv":
            self.files[words[2]] = self.files.pop(words[1])
        elif "DROP SCHEMA IF EXISTS feast_registry CASCADE" in script:
            self.schema = None
            if "pg_restore" in script:
                remote = words[words.index("--exit-on-error") + 1].rstrip(";")
                self.schema = self.files.pop(remote)
        else:
            raise AssertionError(f"unexpected script {script!r}")
        return 0, "", ""


@pytest.fixture
def pods() -> Pods:
    return Pods()


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster(recreate=True)
    c.statefulsets.append(statefulset("feast-feature-server", "feast", 1, port=6566))
    c.pods["feast-feature-server-0"] = pod("feast-feature-server-0", "feast", port=6566)
    c.pods["feast-registry-0"] = pod("feast-registry-0", "feast", port=6570)
    for name in ("timescaledb-primary-0", "timescaledb-replica-0"):
        c.pods[name] = pod(name, "timescaledb", port=5432)
    c.secrets["feast-credentials"] = {"offline-store-password": SECRET}
    return c


def make(c: Cluster, pods: Pods, tmp_path: Path) -> tuple[KindTarget, KindFeastOps]:
    t = KindTarget(scaling_apis(c, pods), adapters=ADAPTERS, context="kind-drill",
                   state=tmp_path / "state",
                   forward=False)
    return t, KindFeastOps(t, "feast")


def exec_pods(c: Cluster) -> list[str]:
    return [call[1][0] for call in c.calls if call[0] == "exec"]


def test_registry_backup_destroy_restore_round_trip(cluster: Cluster, pods: Pods,
                                                     tmp_path: Path) -> None:
    _, ops = make(cluster, pods, tmp_path)
    assert isinstance(ops, FeastOps)
    dest = tmp_path / "backups" / "registry.dump"
    assert ops.backup_registry(dest) == dest
    assert dest.read_bytes() == DUMP
    ops.destroy_registry()
    ops.destroy_registry()  # idempotent: DROP ... IF EXISTS
    assert pods.schema is None
    ops.restore_registry(dest)
    assert pods.schema == DUMP
    assert pods.files == {}  # the copy in the pod is removed
    # Only the primary was changed; the replica was only asked whether it is in recovery.
    assert set(exec_pods(cluster)) == {"timescaledb-primary-0"}
    with pytest.raises(StackError, match="does not exist"):
        ops.restore_registry(tmp_path / "missing.dump")


def test_registry_failures_name_the_pod(cluster: Cluster, pods: Pods, tmp_path: Path) -> None:
    _, ops = make(cluster, pods, tmp_path)
    pods.dump_fails = True
    with pytest.raises(ActionFailed, match=r"timescaledb-primary-0: pg_dump of the registry "
                                           r"failed \(exit 1\): pg_dump: error"):
        ops.backup_registry(tmp_path / "x.dump")
    pods.in_recovery["timescaledb-primary-0"] = "t"  # no primary (mid-failover)
    with pytest.raises(ActionFailed, match="no TimescaleDB primary"):
        ops.destroy_registry()
    pods.in_recovery["timescaledb-replica-0"] = "f"  # promoted: the registry is there now
    pods.dump_fails = False
    with pytest.raises(AssertionError, match="the registry lives on the primary"):
        ops.destroy_registry()  # the handler proves the promoted pod was chosen


class FakeConn:
    def __init__(self, log: list[str], rows: list[tuple[Any, ...]] | None = None) -> None:
        self.log, self.rows = log, rows or []

    def __enter__(self) -> FakeConn:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, query: str, params: Any = None) -> FakeConn:
        self.log.append(query)
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


def test_cli_runs_in_a_running_feast_pod(cluster: Cluster, pods: Pods, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _, ops = make(cluster, pods, tmp_path)
    sql: list[str] = []
    monkeypatch.setattr(ops, "_feast_conn", lambda: FakeConn(sql))
    run = ops.run_cli("apply")
    assert run.command == "feast apply" and run.returncode == 0
    assert "hunter2" not in run.output_tail and "password=***" in run.output_tail
    assert sql == ["CREATE SCHEMA IF NOT EXISTS feast_registry"]  # apply needs the schema
    pod_name, script = pods.cli[-1]
    assert pod_name == "feast-feature-server-0"
    assert script == ("cp /etc/feast/feature_store.yaml /tmp/drill-feast-cli.yaml && cd "
                      "/opt/feast/repo && exec feast --feature-store-yaml "
                      "/tmp/drill-feast-cli.yaml apply")
    # The server is down (stopped, or crash-looping without a registry): the registry
    # server's pod has the same image, repository and config.
    del cluster.pods["feast-feature-server-0"]
    ops.run_cli("materialize", "2000-01-01T00:00:00", "2026-01-01T00:00:00")
    assert pods.cli[-1][0] == "feast-registry-0"
    assert pods.cli[-1][1].endswith("materialize 2000-01-01T00:00:00 2026-01-01T00:00:00")
    assert len(sql) == 1  # only apply ensures the schema
    del cluster.pods["feast-registry-0"]
    with pytest.raises(ActionFailed, match="no running feast pod"):
        ops.run_cli("apply")


def test_server_stop_and_start_scale_the_statefulset(cluster: Cluster, pods: Pods,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    urls: list[str] = []

    def health(base: str, timeout: float = 2.0) -> int | None:
        urls.append(base)
        return 200 if "feast-feature-server-0" in cluster.pods else None

    monkeypatch.setattr(feast_http, "health", health)
    t, ops = make(cluster, pods, tmp_path)
    assert ops.server().name == "feast-feature-server-0"
    ops.stop_server()
    ops.stop_server()  # idempotent
    assert cluster.statefulsets[0].spec.replicas == 0
    assert "feast-feature-server-0" not in cluster.pods
    down = ops.server()
    assert down.name == "feast-feature-server-0" and not t.is_running(down)
    assert ops.base_url() == "http://127.0.0.1:0"  # refuses: no pod to reach
    ops.start_server(timeout=5.0)
    assert cluster.statefulsets[0].spec.replicas == 1
    assert urls[-1] == "http://10.244.1.5:6566"
    ops.start_server(timeout=5.0)  # already running: nothing scaled
    assert [c for c in cluster.calls if c[0] == "patch_namespaced_stateful_set"
            and "spec" in c[1][2]] == [
        ("patch_namespaced_stateful_set", ("feast-feature-server", "drill",
                                           {"spec": {"replicas": 0}}), {}),
        ("patch_namespaced_stateful_set", ("feast-feature-server", "drill",
                                           {"spec": {"replicas": 1}}), {})]


def test_a_server_that_exits_is_reported_by_name(cluster: Cluster, pods: Pods,
                                                 tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feast_http, "health", lambda base, timeout=2.0: None)
    _, ops = make(cluster, pods, tmp_path)
    cluster.pods["feast-feature-server-0"].status.container_statuses = [V1ContainerStatus(
        name="feature-server", image="feast:1", image_id="", ready=False, restart_count=1,
        state=V1ContainerState(terminated=V1ContainerStateTerminated(exit_code=1)))]
    with pytest.raises(StackError, match="feast-feature-server-0 exited with code 1"):
        ops.start_server(timeout=5.0)
    cluster.pods["feast-feature-server-0"].status.container_statuses = None
    with pytest.raises(StackError, match="feast-feature-server-0 to answer HTTP"):
        ops.start_server(timeout=0.5)


def test_offline_truth_connects_as_feast_without_the_password_in_the_dsn(
        cluster: Cluster, pods: Pods, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import psycopg

    seen: dict[str, Any] = {}

    def connect(dsn: str, **kwargs: Any) -> FakeConn:
        seen.update(dsn=dsn, **kwargs)
        return FakeConn([], [(1001, 0.1201, 3005)])

    monkeypatch.setattr(psycopg, "connect", connect)
    _, ops = make(cluster, pods, tmp_path)
    assert ops.offline_truth() == {1001: {"conv_rate": 0.1201, "trips": 3005}}
    assert seen["password"] == SECRET and SECRET not in seen["dsn"]
    assert seen["dsn"] == ("host=10.244.1.5,10.244.1.5 port=5432,5432 dbname=feast "
                           "user=feast target_session_attrs=read-write")


def test_manifest_seed_writes_the_canary_rows_the_driver_expects() -> None:
    docs = list(yaml.safe_load_all(CONFIGMAP.read_text()))
    data = docs[0]["data"]
    scope: dict[str, Any] = {"__name__": "seed"}
    exec(compile(data["seed.py"], "seed.py", "exec"), scope)  # our own manifest
    assert scope["rows"]() == canary.canary_rows()
    for key in ("feature_store.yaml", "registry-server.yaml"):
        cfg = yaml.safe_load(data[key])
        assert cfg["registry"]["registry_type"] == "sql"
        assert "csearch_path%3Dfeast_registry" in cfg["registry"]["path"]
        assert ",db=5," in cfg["online_store"]["connection_string"]


def test_dump_and_restore_scripts_run_for_real(cluster: Cluster, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell around pg_dump/pg_restore, run here with stand-ins for the PostgreSQL
    tools: the dump arrives byte for byte, a failing restore reports its exit code and
    the copy in the "pod" is removed either way."""
    import os

    from tests.unit.kind_fakes import local_shell

    bin_dir, db = tmp_path / "bin", tmp_path / "db"
    bin_dir.mkdir()
    db.mkdir()
    (db / "schema").write_bytes(DUMP)
    tools = {
        # pg_dump ... -Fc -f FILE: the schema's bytes into FILE
        "pg_dump": f'#!/bin/sh\nfor a; do f="$a"; done\ncp {db}/schema "$f"\n',
        # psql ... -tAc 'DROP SCHEMA ...'
        "psql": f"#!/bin/sh\nrm -f {db}/schema\n",
        # pg_restore ... --exit-on-error FILE (fails on an empty file)
        "pg_restore": f'#!/bin/sh\nfor a; do f="$a"; done\ntest -s "$f" || '
                      f'{{ echo "pg_restore: error: input file is too short" >&2; exit 1; }}\n'
                      f'cp "$f" {db}/schema\n',
    }
    for name, text in tools.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def handler(pod_name: str, container: str, argv: list[str],
                stdin: str | None) -> tuple[int, str, str]:
        if argv[-1] == "SELECT pg_is_in_recovery()":
            return 0, "f\n" if pod_name == "timescaledb-primary-0" else "t\n", ""
        return local_shell(pod_name, container, argv, stdin)

    t = KindTarget(scaling_apis(cluster, handler), adapters=ADAPTERS, context="kind-drill",
                   state=tmp_path / "state", forward=False)
    ops = KindFeastOps(t, "feast")
    ops.remote_dump = str(tmp_path / "in pod" / "registry.dump")
    (tmp_path / "in pod").mkdir()
    dest = ops.backup_registry(tmp_path / "backup" / "registry.dump")
    assert dest.read_bytes() == DUMP
    ops.destroy_registry()
    assert not (db / "schema").exists()
    ops.restore_registry(dest)
    assert (db / "schema").read_bytes() == DUMP
    assert not Path(ops.remote_dump).exists()
    empty = tmp_path / "empty.dump"
    empty.write_bytes(b"")
    with pytest.raises(ActionFailed, match=r"timescaledb-primary-0: pg_restore of the "
                                           r"registry failed \(exit 1\).*too short"):
        ops.restore_registry(empty)
    assert not Path(ops.remote_dump).exists()


def test_member_roles_without_pids(cluster: Cluster, pods: Pods, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from drillrunner.services.feast import roles

    t, ops = make(cluster, pods, tmp_path)
    monkeypatch.setattr(t, "deployment", lambda service: ops)
    monkeypatch.setattr(feast_http, "health", lambda base, timeout=2.0: 200)
    assert roles.member_roles(t) == {"feast-feature-server-0": "serving",
                                     "feast-registry-0": "serving"}
    cluster.pods["feast-registry-0"] = pod("feast-registry-0", "feast", port=6570, ready=False)
    assert roles.member_roles(t)["feast-registry-0"] == "down"

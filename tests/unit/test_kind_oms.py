"""KindOmsOps against the kind fakes: the StatefulSet `oms`, its Secret and ConfigMaps.

The pods' HTTP port is modelled by a fake `get` that answers /livez while oms-0 exists (and
can make it crash instead); the Kubernetes side is kind_fakes' ScalingApps, whose replica
count creates and deletes the pods as the controller would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import (
    V1ContainerState,
    V1ContainerStateTerminated,
    V1ContainerStateWaiting,
    V1ContainerStatus,
)

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.services.oms import kind as kind_oms
from drillrunner.services.oms.http import Reply
from drillrunner.services.oms.kind import RECORD, KindOmsOps
from drillrunner.services.oms.ops import OmsOps
from drillrunner.targets.kind.statefulsets import REPLICAS_BEFORE_STOP
from drillrunner.targets.kind.target import KindTarget
from tests.unit.kind_fakes import ADAPTERS, Cluster, pod, scaling_apis, statefulset

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "oms" / "configmaps.yaml"
PASSWORD = "s3cr3t-Pw_x"  # as the template can hold it (no quote, no backslash)
DSN_PASSWORD = "s3cr'et\\pw"  # libpq quoting of the hard characters


def manifest_data() -> dict[str, dict[str, str]]:
    return {d["metadata"]["name"]: d["data"] for d in yaml.safe_load_all(DEPLOY.read_text())}


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster(recreate=True)
    data = manifest_data()
    c.configmaps["oms-kill-switch"] = dict(data["oms-kill-switch"])
    c.configmaps["oms-circuit-breakers"] = dict(data["oms-circuit-breakers"])
    c.configmaps["oms-settings"] = dict(data["oms-settings"])
    # What External Secrets renders from the template: the file with its password.
    c.secrets["oms-config"] = {"oms.yaml": data["oms-config-template"]["oms.yaml"].replace(
        "{{ .password }}", PASSWORD)}
    c.secrets["timescaledb-credentials"] = {"oms-password": DSN_PASSWORD}
    c.statefulsets.append(statefulset("oms", "oms", 2, port=8080))
    for name in ("oms-0", "oms-1"):
        c.pods[name] = pod(name, "oms", port=8080)
    c.pods["timescaledb-primary-0"] = pod("timescaledb-primary-0", "timescaledb", port=5432)
    return c


class Http:
    """oms-0's /livez: 200 while its pod exists (unless `crash`: then the pod's container
    shows a failed run, as a guard refusing to start would)."""

    def __init__(self, c: Cluster) -> None:
        self.c = c
        self.crash: int | None = None
        self.urls: list[str] = []

    def __call__(self, url: str, timeout: float = 2.0) -> Reply:
        self.urls.append(url)
        p = self.c.pods.get("oms-0")
        if p is None:
            return Reply(None, {}, "ConnectError")
        if self.crash is not None:
            p.status.container_statuses = [V1ContainerStatus(
                name="oms", image="oms:1", image_id="", ready=False, restart_count=1,
                state=V1ContainerState(waiting=V1ContainerStateWaiting(
                    reason="CrashLoopBackOff")),
                last_state=V1ContainerState(terminated=V1ContainerStateTerminated(
                    exit_code=self.crash)))]
            return Reply(None, {}, "ConnectError")
        return Reply(200, {"status": "ok"})


@pytest.fixture
def http(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Http:
    fake = Http(cluster)
    monkeypatch.setattr(kind_oms, "get", fake)
    return fake


def make(c: Cluster, tmp_path: Path) -> tuple[KindTarget, KindOmsOps]:
    t = KindTarget(scaling_apis(c), adapters=ADAPTERS, context="kind-drill", state=tmp_path,
                   forward=False)
    return t, KindOmsOps(t, "oms")


def main_file(c: Cluster) -> dict[str, Any]:
    """What the pods load: oms.yaml (the rendered Secret) with oms-settings laid over it."""
    doc: dict[str, Any] = yaml.safe_load(c.secrets["oms-config"]["oms.yaml"])
    doc.update(yaml.safe_load(c.configmaps["oms-settings"]["settings.yaml"]))
    return doc


def sts_notes(c: Cluster) -> dict[str, str]:
    return dict(c.statefulsets[0].metadata.annotations or {})


def test_restart_with_overrides_then_back_to_the_stack(cluster: Cluster, http: Http,
                                                       tmp_path: Path) -> None:
    original = main_file(cluster)
    _, ops = make(cluster, tmp_path)
    assert isinstance(ops, OmsOps)
    ops.stop_member("oms-0")
    ops.stop_member("oms-0")  # idempotent: the first count is kept
    assert cluster.statefulsets[0].spec.replicas == 0
    assert "oms-0" not in cluster.pods and "oms-1" not in cluster.pods
    assert sts_notes(cluster)[REPLICAS_BEFORE_STOP] == "2"
    assert ops.running_overrides("oms-0") == {}

    cluster.calls.clear()
    seconds = ops.start_member("oms-0", {"environment": "production", "simulation": True})
    assert seconds >= 0.0
    assert cluster.statefulsets[0].spec.replicas == 2 and "oms-1" in cluster.pods
    assert REPLICAS_BEFORE_STOP not in sts_notes(cluster)
    doc = main_file(cluster)
    assert doc["simulation"] is True and doc["environment"] == "production"
    assert PASSWORD in doc["postgres_dsn"]  # the rest of the file is untouched
    record = json.loads(sts_notes(cluster)[RECORD])
    assert record == {"overrides": {"environment": "production", "simulation": True},
                      "previous": {"environment": "production", "simulation": False}}
    assert PASSWORD not in json.dumps(sts_notes(cluster))
    # The record is written before the settings change (a crash in between is undoable);
    # the Secret External Secrets owns is never patched.
    names = cluster.names()
    assert names.index("patch_namespaced_stateful_set") < names.index(
        "patch_namespaced_config_map")
    assert "patch_namespaced_secret" not in names
    assert ops.running_overrides("oms-0") == {"environment": "production",
                                              "simulation": True}

    ops.stop_member("oms-0")
    ops.start_member("oms-0")
    assert main_file(cluster) == original
    assert RECORD not in sts_notes(cluster)
    assert ops.running_overrides("oms-0") == {}
    cluster.calls.clear()
    assert ops.start_member("oms-0") == 0.0  # running with the stack's settings
    assert "patch_namespaced_secret" not in cluster.names()
    assert "patch_namespaced_config_map" not in cluster.names()


def test_override_while_running_restarts_the_pods(cluster: Cluster, http: Http,
                                                  tmp_path: Path) -> None:
    before = {k: yaml.safe_load(cluster.configmaps[k][f]) for k, f in (
        ("oms-kill-switch", "kill-switch.yaml"),
        ("oms-circuit-breakers", "circuit-breakers.yaml"))}
    _, ops = make(cluster, tmp_path)
    ops.start_member("oms-0", {"kill_switch_default": "disengaged", "circuit_breaker": False})
    deleted = [c[1][0] for c in cluster.calls if c[0] == "delete_namespaced_pod"]
    assert deleted == ["oms-0", "oms-1"]  # they read their files at start only
    switch = yaml.safe_load(cluster.configmaps["oms-kill-switch"]["kill-switch.yaml"])
    assert switch["default"] == "disengaged" and switch["redis_key"] == "oms:kill-switch"
    breakers = yaml.safe_load(cluster.configmaps["oms-circuit-breakers"]
                              ["circuit-breakers.yaml"])
    assert breakers["postgres"]["enabled"] is False
    assert breakers["postgres"]["failure_threshold"] == 3
    ops.start_member("oms-0")  # the stack's settings: put back, pods restarted again
    after = {k: yaml.safe_load(cluster.configmaps[k][f]) for k, f in (
        ("oms-kill-switch", "kill-switch.yaml"),
        ("oms-circuit-breakers", "circuit-breakers.yaml"))}
    assert after == before
    assert len([c for c in cluster.calls if c[0] == "delete_namespaced_pod"]) == 4


def test_undo_after_a_crash_of_drill(cluster: Cluster, http: Http, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A new drill process (drill recover) finds the record on the StatefulSet and the
    registered undo `oms.start` puts the stack's settings back, twice without harm."""
    from drillrunner.core.actions import Catalog
    from drillrunner.engine.context import RunContext
    from drillrunner.engine.history import History
    from drillrunner.services.oms import faults

    original = main_file(cluster)
    _, first = make(cluster, tmp_path)
    first.stop_member("oms-0")
    first.start_member("oms-0", {"simulation_guard": False, "simulation": True})
    assert main_file(cluster)["simulation_guard"] is False

    t, ops = make(cluster, tmp_path)  # nothing kept in memory
    monkeypatch.setattr(t, "deployment", lambda service: ops)
    monkeypatch.setattr(faults, "get", lambda url, timeout=2.0: Reply(200, {}))
    spec = Catalog.load(["drillrunner.services.oms.faults"]).get("oms.start")
    assert spec is not None
    ctx = RunContext(target=t, scenario="s", history=History(), record=lambda *a, **k: None)
    for _ in range(2):
        spec.call(ctx, spec.bind({"member": "oms-0", "timeout": "5s", "ready_timeout": "1s"}))
        assert main_file(cluster) == original
        assert RECORD not in sts_notes(cluster)
        assert cluster.statefulsets[0].spec.replicas == 2


def test_a_start_that_crashes_names_the_pod_and_undo_still_works(
        cluster: Cluster, http: Http, tmp_path: Path) -> None:
    _, ops = make(cluster, tmp_path)
    ops.stop_member("oms-0")
    http.crash = 3  # the simulation guard refuses: exit code 3
    with pytest.raises(StackError, match=r"oms-0 exited with code 3"):
        ops.start_member("oms-0", {"simulation": True}, timeout=5.0)
    assert ops.running_overrides("oms-0") == {"simulation": True}
    http.crash = None
    ops.stop_member("oms-0")
    ops.start_member("oms-0")
    assert main_file(cluster)["simulation"] is False


def test_silent_member_times_out_with_stack_error(cluster: Cluster, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kind_oms, "get", lambda url, timeout=2.0: Reply(None, {}, "refused"))
    _, ops = make(cluster, tmp_path)
    with pytest.raises(StackError, match="oms-0 to answer /livez"):
        ops.start_member("oms-0", timeout=0.5)


def test_bad_overrides_and_members_are_refused(cluster: Cluster, http: Http,
                                               tmp_path: Path) -> None:
    _, ops = make(cluster, tmp_path)
    with pytest.raises(ActionFailed, match="no setting colour"):
        ops.start_member("oms-0", {"colour": "red"})
    with pytest.raises(ActionFailed, match="invalid OMS overrides"):
        ops.start_member("oms-0", {"environment": "moon"})
    with pytest.raises(StackError, match="no member 'oms-7'"):
        ops.stop_member("oms-7")
    assert "patch_namespaced_secret" not in cluster.names()
    cluster.statefulsets.clear()
    with pytest.raises(ActionFailed, match="no StatefulSet oms in namespace drill"):
        ops.running_overrides("oms-0")


def test_kill_switch_key_url_and_dsn(cluster: Cluster, tmp_path: Path) -> None:
    cluster.configmaps["oms-kill-switch"]["kill-switch.yaml"] = "default: engaged\n" \
        "redis_key: other:key\n"
    _, ops = make(cluster, tmp_path)
    assert ops.kill_switch_key() == "other:key"
    assert ops.url("oms-1") == "http://10.244.1.5:8080"
    dsn = ops.postgres_dsn()
    assert "host=10.244.1.5 port=5432 dbname=oms user=oms" in dsn
    assert "password='s3cr\\'et\\\\pw'" in dsn and "target_session_attrs=read-write" in dsn
    import psycopg

    assert psycopg.conninfo.conninfo_to_dict(dsn)["password"] == DSN_PASSWORD


def test_member_roles_without_pids(cluster: Cluster, http: Http, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """kind has no PIDs: the roles come from the members' HTTP answers."""
    from drillrunner.services.oms import roles

    t, ops = make(cluster, tmp_path)
    monkeypatch.setattr(t, "deployment", lambda service: ops)
    replies = [Reply(200, {}), Reply(503, {})]  # oms-0, then oms-1; then no answer

    def get(url: str, timeout: float = 2.0) -> Reply:
        assert url == "http://10.244.1.5:8080/readyz"
        return replies.pop(0) if replies else Reply(None, {}, "refused")

    monkeypatch.setattr(roles, "get", get)
    assert roles.member_roles(t) == {"oms-0": "ready", "oms-1": "not-ready"}
    assert roles.member_roles(t) == {"oms-0": "down", "oms-1": "down"}

"""drill run --target kind and drill cluster up|down|status, without a cluster."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from drillrunner.cli import main
from drillrunner.core.errors import MissingBinary
from drillrunner.targets.kind.cluster import Cluster, wait_ready
from tests.unit.kind_fakes import Cluster as FakeCluster
from tests.unit.kind_fakes import apis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def in_project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("DRILL_KUBE_CONTEXTS", raising=False)
    return tmp_path


def test_run_kind_refused_context_exits_2_with_one_line(
        in_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "redis-sentinel-failover", "--target", "kind", "--context", "prod",
                 "--out", str(in_project / "reports")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "'prod' is not on the allow-list" in err[0]
    assert not (in_project / "reports").exists() and not (in_project / "drill.lock").exists()


def test_run_kind_current_context_is_checked_too(
        in_project: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = in_project / "kubeconfig"
    cfg.write_text("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "
                   "'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: t}}]\n"
                   "contexts: [{name: prod-eu, context: {cluster: c, user: u}}]\n"
                   "current-context: prod-eu\n")
    monkeypatch.setenv("KUBECONFIG", str(cfg))
    assert main(["run", "redis-sentinel-failover", "--target", "kind"]) == 2
    assert "'prod-eu' is not on the allow-list" in capsys.readouterr().err


def test_context_with_local_target_is_a_usage_error(in_project: Path) -> None:
    assert main(["run", "redis-sentinel-failover", "--context", "kind-drill"]) == 2


@pytest.mark.parametrize("command", [["cluster", "up"], ["cluster", "down"]])
def test_cluster_without_docker_or_kind_is_one_clear_line(
        in_project: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    monkeypatch.setenv("PATH", str(in_project))  # neither docker nor kind on PATH
    code = main(command)
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("drill: docker, kind")
    assert "not found: install Docker" in last
    assert "kind.sigs.k8s.io" in last


def test_cluster_missing_kind_only(tmp_path: Path) -> None:
    c = Cluster(tmp_path, which=lambda t: None if t == "kind" else f"/usr/bin/{t}")
    with pytest.raises(MissingBinary, match=r"^kind not found: install kind"):
        c.create()


class Recorder:
    def __init__(self, clusters: str = "") -> None:
        self.argv: list[list[str]] = []
        self.clusters = clusters

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.argv.append(list(argv))
        out = self.clusters if list(argv[:3]) == ["kind", "get", "clusters"] else ""
        return subprocess.CompletedProcess(list(argv), 0, out, "")


def test_cluster_up_command_lines(tmp_path: Path) -> None:
    (tmp_path / "kind-config.yaml").write_text("kind: Cluster\n")
    (tmp_path / "deploy" / "k8s").mkdir(parents=True)
    run = Recorder()
    c = Cluster(tmp_path, run=run, which=lambda t: f"/usr/bin/{t}")
    assert c.create() is True
    assert c.apply(apis(FakeCluster())) == "kubectl apply -k"
    assert run.argv == [
        ["docker", "info", "--format", "{{.ServerVersion}}"],
        ["kind", "get", "clusters"],
        ["kind", "create", "cluster", "--config", str(tmp_path / "kind-config.yaml"),
         "--name", "drill", "--wait", "120s"],
        ["kubectl", "--context", "kind-drill", "apply", "-k", str(tmp_path / "deploy" / "k8s")],
    ]
    again = Recorder(clusters="drill\n")
    assert Cluster(tmp_path, run=again, which=lambda t: "/x").create() is False  # idempotent


def test_cluster_name_must_give_an_allowed_context(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from drillrunner.core.errors import UsageError

    monkeypatch.setenv("DRILL_KUBE_CONTEXTS", "kwok-*")
    run = Recorder()
    with pytest.raises(UsageError):
        Cluster(tmp_path, run=run, which=lambda t: "/x").create()
    assert run.argv == []


def test_wait_ready_reports_each_workload() -> None:
    from types import SimpleNamespace as NS

    fake = FakeCluster()
    a = apis(fake)
    sts = NS(metadata=NS(name="redis", labels={}), spec=NS(replicas=2),
             status=NS(ready_replicas=2))
    fake.statefulsets.append(sts)
    seen: list[tuple[str, int]] = []
    wait_ready(a, 5.0, lambda w, n: seen.append((w, n)))
    assert seen == [("statefulset/redis", 2)]


class _Deployments:
    """apps API listing one available Deployment per namespace (operators answering)."""

    def __init__(self, available: bool = True) -> None:
        self.available = available

    def list_namespaced_deployment(self, namespace: str) -> object:
        from types import SimpleNamespace as NS

        dep = NS(metadata=NS(name=f"{namespace}-controller"), spec=NS(replicas=1),
                 status=NS(available_replicas=1 if self.available else 0))
        return NS(items=[dep])


def test_cluster_up_builds_images_and_installs_addons(tmp_path: Path) -> None:
    """The command lines `drill cluster up` runs for the images and the add-ons, in order;
    the credential store gets random passwords once and keeps them on a second run."""
    from types import SimpleNamespace as NS

    from drillrunner.targets.kind import addons

    (tmp_path / "deploy" / "kind").mkdir(parents=True)
    (tmp_path / "deploy" / "kind" / "vault.yaml").write_text("kind: Namespace\n")
    fake = FakeCluster()
    core = apis(fake).core

    def create_secret(namespace: str, body: dict[str, object]) -> None:
        fake.secrets[str(body["metadata"]["name"])] = dict(body["stringData"])  # type: ignore[index,call-overload]

    core.create_namespaced_secret = create_secret  # type: ignore[attr-defined]
    run = Recorder()
    c = Cluster(tmp_path, run=run, which=lambda t: f"/usr/bin/{t}")
    assert list(c.load_images()) == ["drillrunner/oms:local", "drillrunner/feast:local"]
    done = list(c.install_addons(NS(core=core, apps=_Deployments()), timeout=5))
    assert done[-1] == "drill-vault/drill-credentials (created)"
    k = ["kubectl", "--context", "kind-drill", "apply", "--server-side", "--force-conflicts",
         "-f"]
    assert run.argv == [
        ["docker", "build", "-f", str(tmp_path / "deploy/k8s/oms/Dockerfile"), "-t",
         "drillrunner/oms:local", str(tmp_path)],
        ["kind", "load", "docker-image", "drillrunner/oms:local", "--name", "drill"],
        ["docker", "build", "-f", str(tmp_path / "deploy/k8s/feast/Dockerfile"), "-t",
         "drillrunner/feast:local", str(tmp_path)],
        ["kind", "load", "docker-image", "drillrunner/feast:local", "--name", "drill"],
        [*k, addons.INGRESS_NGINX.url],
        [*k, addons.CERT_MANAGER.url],
        ["helm", "--kube-context", "kind-drill", "upgrade", "--install", "external-secrets",
         "external-secrets", "--repo", "https://charts.external-secrets.io", "--version",
         "1.1.1", "--namespace", "external-secrets", "--create-namespace", "--wait",
         "--timeout", "10m"],
        [*k, str(tmp_path / "deploy/kind/vault.yaml")],
    ]
    first = dict(fake.secrets["drill-credentials"])
    assert sorted(first) == sorted(addons.VAULT_KEYS)
    assert len(set(first.values())) == 4 and all(len(v) >= 24 for v in first.values())
    again = list(c.install_addons(NS(core=core, apps=_Deployments()), timeout=5))
    assert again[-1] == "drill-vault/drill-credentials (kept)"
    assert fake.secrets["drill-credentials"] == first  # never rotated under the data


def test_cluster_up_needs_helm_and_says_so(tmp_path: Path) -> None:
    c = Cluster(tmp_path, run=Recorder(), which=lambda t: None if t == "helm" else "/x")
    with pytest.raises(MissingBinary, match=r"^helm not found: install helm \(https://helm"):
        next(c.install_addons(object()))
    assert c.calls == []  # nothing applied before the check


def test_addons_not_available_name_what_is_missing() -> None:
    from drillrunner.core.errors import StackError
    from drillrunner.targets.kind.addons import wait_namespaces

    with pytest.raises(StackError, match=r"not available: cert-manager/cert-manager-"
                                         r"controller 0/1"):
        wait_namespaces(_Deployments(available=False), ["cert-manager"], timeout=0.5)

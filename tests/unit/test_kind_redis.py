"""KindRedisOps against the fake Kubernetes API and a model of the Redis pods.

The model (`Tier`) answers redis-cli as the servers and sentinels would, recreates a deleted
pod the way the manifests' startup scripts start it (held while `.drill-hold` exists, else
joining the master the sentinels name, or as its one-shot start arguments say), and runs
every shell script the ops send for real here, on per-pod folders standing in for the
volumes (/proc/1/comm is pointed at a file saying whether Redis or the hold loop runs).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.rest import ApiException

from drillrunner.core.errors import ActionFailed
from drillrunner.services.redis import topology
from drillrunner.services.redis.kind import KindRedisOps
from drillrunner.services.redis.ops import RedisOps, redis_ops
from drillrunner.targets.base import MemberRef
from drillrunner.targets.kind.apis import KubeApis
from drillrunner.targets.kind.target import KindTarget
from tests.unit.kind_fakes import ADAPTERS, Cluster, FakeCore, apis, local_shell, pod

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "k8s" / "redis"
SERVERS = ("redis-0", "redis-1")
SENTINELS = ("redis-sentinel-0", "redis-sentinel-1", "redis-sentinel-2")
ALL = SERVERS + SENTINELS
DOWN = (1, "", "Could not connect to Redis at 127.0.0.1:6379: Connection refused")


def dns(name: str) -> str:
    gov = "redis-sentinel" if "sentinel" in name else "redis-headless"
    return f"{name}.{gov}.drill.svc.cluster.local"


def make_pod(name: str, root: Path, uid: str | None = None) -> Any:
    """A pod whose volume is the folder root/name (its hold file there, as on /data)."""
    sentinel = "sentinel" in name
    p = pod(name, "redis", "sentinel" if sentinel else "server",
            port=26379 if sentinel else 6379, uid=uid, hold=str(root / name / ".drill-hold"))
    p.spec.containers[0].name = "sentinel" if sentinel else "redis"
    p.status.pod_ip = f"10.244.1.{10 + ALL.index(name)}"
    return p


def redis_config() -> dict[str, str]:
    doc = yaml.safe_load((MANIFESTS / "configmap.yaml").read_text())
    return dict(doc["data"])


class Tier:
    """What runs in the pods: server roles, AOF, the sentinels' answer, pod lifecycles."""

    def __init__(self, c: Cluster, root: Path) -> None:
        self.c, self.root = c, root
        self.role = {"redis-0": "master", "redis-1": "slave"}
        self.master_of = {"redis-1": "redis-0"}
        self.appendonly = {"redis-0": "yes", "redis-1": "yes"}
        self.sentinels_say = "redis-0"
        self.cli: list[tuple[str, list[str]]] = []
        self.started: list[tuple[str, str]] = []  # (pod, how)
        self.waiting: set[str] = set()  # pods whose startup script is in the hold loop
        self.broken: set[str] = set()  # pods whose scripts fail
        self.cli_error = ""  # every redis-cli gets this reply when set
        for name in ALL:
            c.pods[name] = make_pod(name, root)
            self.dir(name).mkdir(parents=True)
            self._up(name, True)

    def dir(self, name: str) -> Path:
        return self.root / name

    def held(self, name: str) -> bool:
        return (self.dir(name) / ".drill-hold").exists()

    def running(self, name: str) -> bool:
        return name in self.c.pods and self.c.pods[name].status.conditions[0].status == "True"

    def _up(self, name: str, up: bool) -> None:
        self.c.pods[name].status.conditions[0].status = "True" if up else "False"
        (self.root / f"{name}.comm").write_text("redis-server\n" if up else "sh\n")

    def recreate(self, name: str) -> None:
        """The StatefulSet controller after a delete, then the startup script."""
        old = self.c.pods[name]
        self.c.pods[name] = make_pod(name, self.root, uid=old.metadata.uid + "-new")
        if self.held(name):
            self._up(name, False)
            self.waiting.add(name)
        else:
            self.start(name)

    def start(self, name: str) -> None:
        """servers.yaml's script: one-shot args, else the master the sentinels name."""
        self._up(name, True)
        if "sentinel" in name:
            self.started.append((name, "sentinel"))
            return
        self.appendonly[name] = "yes"
        args_file = self.dir(name) / ".drill-start-args"
        if args_file.exists():
            args = args_file.read_text().split()
            args_file.unlink()
            if "--appendonly" in args:
                self.appendonly[name] = args[args.index("--appendonly") + 1]
            master = (args[args.index("--replicaof") + 1].split(".")[0]
                      if "--replicaof" in args else name)
            self.started.append((name, " ".join(args)))
        else:
            master = self.sentinels_say
            self.started.append((name, "asked the sentinels"))
        self.role[name] = "master" if master == name else "slave"
        if master != name:
            self.master_of[name] = master

    def __call__(self, name: str, container: str, argv: list[str],
                 stdin: str | None) -> tuple[int, str, str]:
        assert container == ("sentinel" if "sentinel" in name else "redis")
        if argv[0] == "redis-cli":
            if self.cli_error:
                return 0, self.cli_error, ""
            return self.redis_cli(name, argv[4:])
        if name in self.broken:
            return 1, "", "sh: read-only file system"
        assert argv[:2] == ["sh", "-c"], argv
        script = argv[2].replace("/proc/1/comm", str(self.root / f"{name}.comm"))
        result = local_shell(name, container, ["sh", "-c", script], stdin)
        if name in self.waiting and not self.held(name):
            self.waiting.discard(name)
            self.start(name)  # the hold loop ends once the marker is gone
        return result

    def redis_cli(self, name: str, args: list[str]) -> tuple[int, str, str]:
        self.cli.append((name, args))
        if not self.running(name):
            return DOWN
        match [a.lower() for a in args[:2]]:
            case ["config", "get"]:
                return 0, f"appendonly\n{self.appendonly[name]}\n", ""
            case ["config", "set"]:
                self.appendonly[name] = args[3]
            case ["info", "replication"]:
                if self.role[name] == "master":
                    return 0, "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n", ""
                return 0, (f"# Replication\r\nrole:slave\r\nmaster_host:"
                           f"{dns(self.master_of[name])}\r\nmaster_port:6379\r\n"), ""
            case ["replicaof", _]:
                if args[1].lower() == "no":
                    self.role[name] = "master"
                else:
                    self.role[name], self.master_of[name] = "slave", args[1].split(".")[0]
            case ["sentinel", "get-master-addr-by-name"]:
                if args[2] != "drill-redis":
                    return 0, "\n", ""
                return 0, f"{dns(self.sentinels_say)}\n6379\n", ""
            case ["sentinel", "remove"] | ["sentinel", "monitor"] | ["sentinel", "set"]:
                pass
            case _:
                raise AssertionError(f"unexpected redis-cli {args}")
        return 0, "OK\n", ""


class RecreatingCore(FakeCore):
    """A delete is followed by the StatefulSet controller's new pod under the same name."""

    def __init__(self, c: Cluster, tier: Tier) -> None:
        super().__init__(c)
        self.tier = tier

    def delete_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> None:
        self.c.log("delete_namespaced_pod", name, namespace, **kwargs)
        if name not in self.c.pods:
            raise ApiException(status=404, reason="Not Found")
        self.tier.recreate(name)


class Ops(KindRedisOps):
    """The volumes are folders here (one per pod); short waits."""

    wait = 2.0
    root = Path("/nonexistent")

    def _dir(self, member: MemberRef) -> str:
        return str(self.root / member.name)


@pytest.fixture
def cluster() -> Cluster:
    c = Cluster()
    c.configmaps["redis-config"] = redis_config()
    return c


@pytest.fixture
def tier(cluster: Cluster, tmp_path: Path) -> Tier:
    return Tier(cluster, tmp_path / "pods")


@pytest.fixture
def target(cluster: Cluster, tier: Tier, tmp_path: Path) -> KindTarget:
    a = apis(cluster, tier)
    kube = KubeApis(core=RecreatingCore(cluster, tier), apps=a.apps, networking=a.networking,
                    version=a.version, stream=a.stream)
    return KindTarget(kube, adapters=ADAPTERS, context="kind-drill", state=tmp_path / "state",
                      forward=False)


@pytest.fixture
def ops(target: KindTarget, tier: Tier) -> Ops:
    o = Ops(target, "redis")
    o.root = tier.root
    return o


def execs(c: Cluster) -> list[tuple[str, list[str]]]:
    return [(call[1][0], call[1][1]) for call in c.calls if call[0] == "exec"]


# -- registration, addresses ---------------------------------------------------------------


def test_registered_for_redis_and_satisfies_the_protocol(target: KindTarget) -> None:
    ops = redis_ops(target)
    assert type(ops) is KindRedisOps and isinstance(ops, RedisOps)
    assert ops.master_name == "drill-redis"  # as in the manifests (and feast / oms)
    assert [m.name for m in ops.servers()] == list(SERVERS)
    assert [m.name for m in ops.sentinels()] == list(SENTINELS)


def test_member_for_maps_in_cluster_names_and_pod_ips(ops: Ops) -> None:
    r0, r1 = ops.servers()
    s2 = ops.sentinels()[2]
    assert ops.member_for(dns("redis-1"), 6379) == r1
    assert ops.member_for("redis-0.redis-headless", 6379) == r0
    assert ops.member_for("redis-0", 6379) == r0
    assert ops.member_for("10.244.1.11", 6379) == r1  # redis-1's pod IP
    assert ops.member_for(dns("redis-sentinel-2"), 26379) == s2
    assert ops.member_for(r0.host, r0.port) == r0  # the address the target hands out
    assert ops.member_for(dns("redis-1"), 26379) is None  # not the server's port
    assert ops.member_for("redis-1.redis-sentinel.drill.svc.cluster.local", 6379) is None
    assert ops.member_for("redis-7", 6379) is None
    assert ops.member_for("10.9.9.9", 6379) is None
    assert ops.in_cluster(r0) == dns("redis-0")


def test_local_member_for_is_an_exact_match(tmp_path: Path) -> None:
    from drillrunner.services.redis.local import RedisDeployment
    from drillrunner.stack.settings import StackSettings
    from drillrunner.targets.local.supervisor import Supervisor

    d = RedisDeployment(StackSettings(port_base=19000), tmp_path, Supervisor(tmp_path))
    r1 = d.servers()[1]
    assert d.member_for("127.0.0.1", r1.port) == r1
    assert d.member_for("localhost", r1.port) is None
    assert d.member_for("127.0.0.1", 1) is None
    d.hold("redis-0")  # nothing to do locally: a killed member stays down


def test_topology_maps_sentinel_addresses_through_the_ops(ops: Ops) -> None:
    servers = ops.servers()
    assert topology.locate(servers, dns("redis-1"), 6379, ops) == servers[1]
    assert topology.locate(servers, dns("redis-1"), 6379) is None  # unmapped: exact only
    assert topology.locate(servers, servers[0].host, servers[0].port) == servers[0]
    assert topology.master_name(ops) == "drill-redis" and topology.master_name(None) == "drill"


# -- roles -----------------------------------------------------------------------------


def test_current_master_from_sentinels_then_servers_then_files(
        ops: Ops, tier: Tier, cluster: Cluster) -> None:
    tier.sentinels_say = "redis-1"
    assert ops.current_master().name == "redis-1"
    asked = [a for n, a in tier.cli if n.startswith("redis-sentinel")]
    assert asked[0] == ["sentinel", "get-master-addr-by-name", "drill-redis"]
    for s in SENTINELS:  # no sentinel runs: the server that says it is master
        tier._up(s, False)
    assert ops.current_master().name == "redis-0"
    for s in SERVERS:  # nothing runs: the sentinels' state files, highest epoch wins
        tier._up(s, False)
    files = {"redis-sentinel-0": (dns("redis-0"), 1), "redis-sentinel-1": (dns("redis-1"), 3)}
    for s, (host, epoch) in files.items():
        (tier.dir(s) / "sentinel.conf").write_text(
            f"port 26379\nsentinel monitor drill-redis {host} 6379 2\n"
            f"sentinel config-epoch drill-redis {epoch}\n")
    assert ops.current_master().name == "redis-1"
    for s in files:
        (tier.dir(s) / "sentinel.conf").unlink()
    assert ops.current_master().name == "redis-0"  # nothing known: the first server


def test_appendonly_reads_the_live_config_once(ops: Ops, tier: Tier) -> None:
    tier.appendonly = {"redis-0": "no", "redis-1": "no"}
    assert ops.appendonly is False
    assert ["config", "get", "appendonly"] in [a for _, a in tier.cli]
    tier.appendonly = {"redis-0": "yes", "redis-1": "yes"}
    assert ops.appendonly is False  # kept for the run: a restore puts it back as it was


def test_appendonly_falls_back_to_the_configmap(ops: Ops, tier: Tier,
                                                cluster: Cluster) -> None:
    for s in SERVERS:
        tier._up(s, False)
    assert ops.appendonly is True  # redis.conf: appendonly yes
    fresh = Ops(ops.target, "redis")
    cluster.configmaps["redis-config"]["redis.conf"] = "port 6379\n"
    assert fresh.appendonly is False  # Redis's own default


def test_isinstance_never_raises_without_a_stack(tmp_path: Path) -> None:
    t = KindTarget(apis(Cluster()), adapters=ADAPTERS, context="kind-drill", state=tmp_path,
                   forward=False)
    ops = redis_ops(t)  # isinstance reads `appendonly`: no server, no ConfigMap
    assert ops.appendonly is True
    with pytest.raises(ActionFailed, match="no Redis server pods"):
        ops.current_master()


# -- hold, wipe, copy: the destroy / restore cycle ---------------------------------------


def test_wipe_refuses_a_running_member_without_exec(ops: Ops, cluster: Cluster) -> None:
    with pytest.raises(ActionFailed, match=r"redis-0 is running: wiping .*hold it"):
        ops.wipe("redis-0")
    with pytest.raises(ActionFailed, match="redis-1 is running"):
        ops.copy_in("redis-1", _snapshot(ops.root.parent))
    assert execs(cluster) == []


def test_wipe_refuses_a_recreated_member_that_was_not_held(
        ops: Ops, target: KindTarget, tier: Tier) -> None:
    r1 = target.member("redis", "redis-1")
    target.kill(r1)
    tier._up("redis-1", False)  # e.g. still loading: not Ready, but not held either
    with pytest.raises(ActionFailed, match=r"redis-1 is not held down: wiping .*hold"):
        ops.wipe("redis-1")


def _snapshot(root: Path) -> Path:
    src = root / "snapshot"
    src.mkdir(exist_ok=True)
    (src / "dump.rdb").write_bytes(b"REDIS0011" + bytes(range(256)) * 300)
    return src


def test_destroy_and_restore_cycle(ops: Ops, target: KindTarget, tier: Tier,
                                   cluster: Cluster) -> None:
    """The driver's sequence (faults.destroy_tier, backup.restore_into_fresh_tier): hold,
    kill, wipe; copy_in; prepare the primary with AOF off, AOF on, replicas, sentinels."""
    for name in SERVERS:
        (tier.dir(name) / "appendonlydir").mkdir()
        (tier.dir(name) / "appendonlydir" / "appendonly.aof.1.incr.aof").write_text("x")
        (tier.dir(name) / "dump.rdb").write_bytes(b"old")
    for name in SENTINELS:
        (tier.dir(name) / "sentinel.conf").write_text("sentinel myid abc\n")
    assert ops.has_data("redis-0") and not ops.has_data("redis-sentinel-0")
    members = [*ops.sentinels(), *ops.servers()]
    for m in members:
        ops.hold(m.name)
        ops.hold(m.name)  # idempotent
        target.kill(m)
    assert all(tier.held(n) and not target.is_running(target.member("redis", n)) for n in ALL)
    for m in members:
        ops.wipe(m.name)
        ops.wipe(m.name)  # idempotent
    assert sorted(os.listdir(tier.dir("redis-0"))) == [".drill-hold"]
    assert not (tier.dir("redis-sentinel-0") / "sentinel.conf").exists()
    assert not ops.has_data("redis-0") and not ops.has_data("redis-1")

    src = _snapshot(tier.root.parent)
    ops.copy_in("redis-0", src)
    assert (tier.dir("redis-0") / "dump.rdb").read_bytes() == (src / "dump.rdb").read_bytes()
    primary = ops.servers()[0]
    ops.prepare_server("redis-0", None, appendonly=False)
    assert tier.started[-1] == ("redis-0", "--appendonly no")
    assert tier.role["redis-0"] == "master" and tier.appendonly["redis-0"] == "no"
    assert not (tier.dir("redis-0") / ".drill-start-args").exists()  # one-shot
    assert ops.appendonly is True  # the overridden primary is left out: the ConfigMap says
    tier.appendonly["redis-0"] = "yes"  # the driver's CONFIG SET appendonly yes
    ops.prepare_server("redis-0", None)  # running now: nothing to change
    assert tier.started[-1][0] == "redis-0" and len(tier.started) == 1
    ops.prepare_server("redis-1", primary)
    assert tier.started[-1] == ("redis-1", f"--replicaof {dns('redis-0')} 6379")
    assert tier.master_of["redis-1"] == "redis-0" and tier.role["redis-1"] == "slave"
    for s in ops.sentinels():
        ops.prepare_sentinel(s.name, primary, fresh=True)
    conf = (tier.dir("redis-sentinel-1") / "sentinel.conf").read_text()
    assert f"sentinel monitor drill-redis {dns('redis-0')} 6379 2" in conf
    assert "sentinel resolve-hostnames yes" in conf and "myid" not in conf  # fresh
    assert conf.index("resolve-hostnames") < conf.index("sentinel monitor")
    assert not any(tier.held(n) for n in ALL)
    assert all(target.is_running(m) for m in [*ops.servers(), *ops.sentinels()])


def test_prepare_sentinel_keeps_state_of_the_same_master(ops: Ops, target: KindTarget,
                                                         tier: Tier) -> None:
    primary = ops.servers()[0]
    name = "redis-sentinel-0"
    state = (f"port 26379\nsentinel myid abc\nsentinel monitor drill-redis {dns('redis-0')} "
             "6379 2\nsentinel known-replica drill-redis x 6379\n")
    (tier.dir(name) / "sentinel.conf").write_text(state)
    ops.hold(name)
    target.kill(target.member("redis", name))
    ops.prepare_sentinel(name, primary)
    assert (tier.dir(name) / "sentinel.conf").read_text() == state and not tier.held(name)
    ops.hold(name)
    target.kill(target.member("redis", name))
    ops.prepare_sentinel(name, ops.servers()[1])  # another master: rewritten, identity kept
    conf = (tier.dir(name) / "sentinel.conf").read_text()
    assert f"monitor drill-redis {dns('redis-1')} 6379 2" in conf
    assert "sentinel myid abc" in conf and "known-replica" not in conf


def test_prepare_on_running_members_acts_live(ops: Ops, tier: Tier) -> None:
    r0 = ops.servers()[0]
    ops.prepare_server("redis-1", r0)  # already its replica: nothing sent
    assert not [a for _, a in tier.cli if a[0] == "replicaof"]
    tier.master_of["redis-1"] = "redis-7"  # replicating something else
    ops.prepare_server("redis-1", r0)
    assert ("redis-1", ["replicaof", dns("redis-0"), "6379"]) in tier.cli
    ops.prepare_server("redis-1", None, appendonly=False)
    assert ("redis-1", ["replicaof", "no", "one"]) in tier.cli
    assert ("redis-1", ["config", "set", "appendonly", "no"]) in tier.cli
    ops.prepare_sentinel("redis-sentinel-0", r0)  # running, not fresh: it follows the quorum
    assert not [a for n, a in tier.cli if n == "redis-sentinel-0"]
    ops.prepare_sentinel("redis-sentinel-0", r0, fresh=True)
    sent = [a for n, a in tier.cli if n == "redis-sentinel-0"]
    assert sent[:2] == [["sentinel", "remove", "drill-redis"],
                        ["sentinel", "monitor", "drill-redis", dns("redis-0"), "6379", "2"]]
    assert ["sentinel", "set", "drill-redis", "down-after-milliseconds", "5000"] in sent
    with pytest.raises(ActionFailed, match="is a sentinel"):
        ops.prepare_server("redis-sentinel-0", None)


def test_a_recreated_unheld_member_rejoins_by_itself(ops: Ops, target: KindTarget,
                                                     tier: Tier) -> None:
    """kill_primary's undo (start_member): the new pod asked the sentinels already."""
    tier.sentinels_say = "redis-1"
    target.kill(target.member("redis", "redis-0"))
    assert tier.started[-1] == ("redis-0", "asked the sentinels")
    assert tier.master_of["redis-0"] == "redis-1"
    tier._up("redis-0", False)  # not Ready yet when the driver looks
    ops.prepare_server("redis-0", ops.servers()[1])  # nothing written, nothing released
    assert not (tier.dir("redis-0") / ".drill-start-args").exists()
    with pytest.raises(ActionFailed, match="persistence override needs it held"):
        ops.prepare_server("redis-0", None, appendonly=False)
    tier._up("redis-sentinel-0", False)
    with pytest.raises(ActionFailed, match="forgetting its state needs it held"):
        ops.prepare_sentinel("redis-sentinel-0", ops.servers()[1], fresh=True)


def test_copy_out_brings_rdb_and_aof_files(ops: Ops, tier: Tier, tmp_path: Path) -> None:
    data = tier.dir("redis-0")
    (data / "dump.rdb").write_bytes(bytes(range(256)) * 500)
    (data / "appendonlydir").mkdir()
    (data / "appendonlydir" / "appendonly.aof.1.base.rdb").write_bytes(b"\x00\xffbase")
    (data / "appendonlydir" / "appendonly.aof.manifest").write_text("file x seq 1 type b\n")
    dest = tmp_path / "out"
    assert ops.copy_out("redis-0", dest) == ["dump.rdb", "appendonlydir"]
    assert (dest / "dump.rdb").read_bytes() == (data / "dump.rdb").read_bytes()
    assert (dest / "appendonlydir" / "appendonly.aof.1.base.rdb").read_bytes() == b"\x00\xffbase"
    assert ops.copy_out("redis-1", tmp_path / "empty") == []
    with pytest.raises(ActionFailed, match=r"holds no dump\.rdb"):
        ops.copy_in("redis-0", tmp_path / "empty")


def _statefulset(name: str, kind: str, replicas: int, root: Path) -> Any:
    from kubernetes.client import (
        V1LabelSelector,
        V1ObjectMeta,
        V1PodTemplateSpec,
        V1StatefulSet,
        V1StatefulSetSpec,
    )

    template = make_pod(f"{name}-0", root)
    labels = {k: v for k, v in template.metadata.labels.items()
              if k != "statefulset.kubernetes.io/pod-name"}
    assert labels["drill.dev/member-kind"] == kind
    return V1StatefulSet(
        metadata=V1ObjectMeta(name=name, labels=labels),
        spec=V1StatefulSetSpec(replicas=replicas, service_name=name,
                               selector=V1LabelSelector(match_labels=labels),
                               template=V1PodTemplateSpec(
                                   metadata=V1ObjectMeta(
                                       labels=labels, annotations=template.metadata.annotations),
                                   spec=template.spec)))


def test_failures_name_the_pod(ops: Ops, cluster: Cluster, tier: Tier) -> None:
    with pytest.raises(ActionFailed, match="no member 'redis-5'"):
        ops.hold("redis-5")
    cluster.statefulsets.append(_statefulset("redis", "server", 2, tier.root))
    del cluster.pods["redis-1"]  # an ordinal without a pod (yet)
    with pytest.raises(ActionFailed, match=r"redis-1: holding redis-1 down.*no such pod"):
        ops.hold("redis-1")  # no pod came back within the wait
    tier.broken.add("redis-0")  # every script exits 1 there
    with pytest.raises(ActionFailed, match=r"redis-0: holding redis-0 down .*failed \(exit 1\)"):
        ops.hold("redis-0")
    with pytest.raises(ActionFailed, match=r"redis-0 to be up or held down"):
        tier._up("redis-0", False)
        ops.wipe("redis-0")  # its hold state cannot be read
    tier._up("redis-0", True)
    with pytest.raises(ActionFailed, match=r"redis-0: releasing redis-0 .*failed \(exit 1\)"):
        ops.prepare_server("redis-0", ops.servers()[1])
    tier.broken.clear()
    tier.cli_error = "LOADING Redis is loading the dataset in memory\n"
    with pytest.raises(ActionFailed, match=r"redis-0: redis-cli info replication failed: LOADING"):
        ops.prepare_server("redis-0", ops.servers()[1])
    tier.cli_error = ""
    tier.c.pods["redis-0"].status.conditions[0].status = "False"
    del cluster.pods["redis-0"]
    with pytest.raises(ActionFailed, match="redis-0: no such pod"):
        ops.copy_out("redis-0", ops.root.parent / "x")


# -- the manifests' startup script -----------------------------------------------------------


def _server_script() -> str:
    doc = yaml.safe_load((MANIFESTS / "servers.yaml").read_text())
    return str(doc["spec"]["template"]["spec"]["containers"][0]["command"][2])


def _run_server_script(tmp_path: Path, hostname: str, answers: dict[str, str],
                       args: str | None = None) -> str:
    """servers.yaml's script with fake hostname / redis-cli / redis-server on PATH and
    /data pointed at a folder; what redis-server was started with."""
    bin_ = tmp_path / "bin"
    data = tmp_path / "data"
    bin_.mkdir(exist_ok=True)
    data.mkdir(exist_ok=True)
    fakes = {
        "hostname": f"echo {hostname}",
        # answers keyed by sentinel host; an unknown host fails like a dead sentinel
        "redis-cli": "case \"$3\" in\n" + "".join(
            f"  {host}) printf '%s\\n6379\\n' {master};;\n" for host, master in answers.items())
        + "  *) exit 1;;\nesac",
        "redis-server": "echo \"$@\"",
        "sleep": "exit 0",
    }
    for name, body in fakes.items():
        path = bin_ / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    if args is not None:
        (data / ".drill-start-args").write_text(args)
    script = _server_script().replace("/data", str(data))
    done = subprocess.run(["sh", "-ec", script], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"},
                          check=True)
    return done.stdout.strip()


def test_startup_script_joins_the_master_most_sentinels_name(tmp_path: Path) -> None:
    conf = "/etc/redis/redis.conf --replica-announce-ip"
    out = _run_server_script(tmp_path, "redis-0", {
        "redis-sentinel-0.redis-sentinel": dns("redis-1"),
        "redis-sentinel-1.redis-sentinel": dns("redis-1"),
        "redis-sentinel-2.redis-sentinel": dns("redis-0")})
    assert out == f"{conf} {dns('redis-0')} --replicaof {dns('redis-1')} 6379"
    out = _run_server_script(tmp_path, "redis-1", {
        "redis-sentinel-1.redis-sentinel": dns("redis-1")})
    assert out == f"{conf} {dns('redis-1')}"  # named master itself: a primary
    out = _run_server_script(tmp_path, "redis-1", {})  # no sentinel answers: redis-0
    assert out == f"{conf} {dns('redis-1')} --replicaof {dns('redis-0')} 6379"
    out = _run_server_script(tmp_path, "redis-1", {
        "redis-sentinel-0.redis-sentinel": dns("redis-1")}, args="--appendonly no\n")
    assert out == f"{conf} {dns('redis-1')} --appendonly no"  # drill's one-shot arguments
    assert not (tmp_path / "data" / ".drill-start-args").exists()


# -- the driver's address mapping on kind ------------------------------------------------------


def test_readiness_maps_what_servers_and_sentinels_report(
        ops: Ops, monkeypatch: pytest.MonkeyPatch) -> None:
    """INFO and SENTINEL MASTER name the master by in-cluster name and port 6379; the
    members are the target's addresses: readiness matches them through the ops."""
    from drillrunner.services.redis import client

    infos = {"redis-0": {"role": "master", "master_repl_offset": 10,
                         "slave0": {"state": "online", "offset": 10}},
             "redis-1": {"role": "slave", "master_link_status": "up",
                         "master_host": dns("redis-0"), "master_port": 6379}}
    names: list[str] = []

    def sentinel_master(s: MemberRef, name: str = "drill") -> dict[str, Any]:
        names.append(name)
        return {"ip": dns("redis-0"), "port": 6379, "flags": "master", "num-slaves": 1,
                "num-other-sentinels": 2}

    monkeypatch.setattr(client, "info", lambda m, section: infos[m.name])
    monkeypatch.setattr(client, "sentinel_master", sentinel_master)
    r = topology.readiness(ops.servers(), ops.sentinels(), ops)
    assert r.ready and r.master == "redis-0" and r.replicas_linked == ["redis-1"]
    assert set(names) == {"drill-redis"}
    infos["redis-1"]["master_host"] = dns("redis-1")
    assert topology.readiness(ops.servers(), [], ops).problems == [
        "no replica has its link to redis-0 up"]


def test_workload_writes_to_the_mapped_master(ops: Ops, cluster: Cluster) -> None:
    from drillrunner.services.redis.workload import SequencedWrites

    w = SequencedWrites([("127.0.0.1", 1)], "run", 0.1, ops.master_name, ops.member_for)
    answer = (dns("redis-1"), 6379)
    w._sentinel.discover_master = lambda name: answer
    r1 = ops.servers()[1]
    assert w._master() == (r1.host, r1.port)
    listed = len(cluster.calls)
    assert w._master() == (r1.host, r1.port)
    assert len(cluster.calls) == listed  # a name seen once is not looked up again
    answer = ("10.9.9.9", 6379)
    assert w._master() == answer  # none of ours: used as named
    w.close()

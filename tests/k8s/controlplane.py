"""A real Kubernetes control plane on 127.0.0.1, without Docker: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok (fake nodes), built by
scripts/build-k8s-testbed from the Go module proxy.

Every process is started through drill's own Supervisor (its own session, a PID record) and
stopped by that PID, never by name. Certificates are generated here with `cryptography`: one
CA, the API server's serving certificate, and client certificates for the admin (group
system:masters), the controller manager and the scheduler, whose RBAC roles the API server
bootstraps itself. etcd listens on plain HTTP on 127.0.0.1 only.

What runs and what does not: the API server, the controllers (StatefulSet, Deployment,
ReplicaSet, node lifecycle, PV binder, service accounts...) and the scheduler are the real
programs. The nodes are kwok's: pods are scheduled, bound, marked Running and Ready by kwok,
but no container runs (no kubelet, no probes, no network). NetworkPolicies are stored and
served but nothing enforces them. PersistentVolumes are created by a small test-side
provisioner (`StaticProvisioner`), standing in for kind's local-path provisioner.

Exec and port-forward: kwok also serves the kubelet's streaming API on its --server-address
(HTTP and HTTPS on one port; HTTPS with a serving certificate of the testbed CA, which the API
server verifies with --kubelet-certificate-authority). Every node advertises it as its kubelet
(InternalIP 127.0.0.1, daemonEndpoints port from --node-port), so `pods/exec` and
`pods/portforward` go through the real API server to kwok. kwok runs an exec'd command ON THIS
HOST (kwok's Exec / ClusterExec CRDs, `local`) and forwards a pod port to a LOCAL address
(PortForward / ClusterPortForward); a pod without such a rule has neither. The CRDs are kwok's
own YAMLs, copied by the build script next to the binaries (`crds/`), installed here before
kwok starts.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from drillrunner.core.waiting import poll_until
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor, tail_text

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-k8s-testbed"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
            "kwok")
# kwok's CRDs for exec and port-forward (scripts/build-k8s-testbed copies them to ../crds) and
# the kinds kwok is told to watch (--enable-crds).
KWOK_CRDS = ("execs", "clusterexecs", "portforwards", "clusterportforwards")
KWOK_CRD_KINDS = ("Exec", "ClusterExec", "PortForward", "ClusterPortForward")

CONTEXT = "kind-drill-testbed"  # on the kind target's default allow-list (kind-*)
FOREIGN_CONTEXT = "prod-drill-testbed"  # same cluster, a name the allow-list must refuse
NODES = ("kwok-node-0", "kwok-node-1", "kwok-node-2")
KWOK_LABEL = "drill.testbed/kwok"  # kwok manages (heartbeats) nodes carrying it = "managed"
SERVICE_CIDR = "10.96.0.0/16"
NODE_LEASE_SECONDS = 8  # kwok renews every 2 s; the node controller's grace period is 10 s
NODE_GRACE = "10s"


def bin_dir() -> Path:
    out = subprocess.run([str(BUILD_SCRIPT), "--print-dir"], capture_output=True, text=True,
                         check=True)
    return Path(out.stdout.strip())


def crd_files(folder: Path) -> list[Path]:
    """kwok's CRD YAMLs, beside the bin folder `folder`."""
    return [folder.parent / "crds" / f"kwok.x-k8s.io_{c}.yaml" for c in KWOK_CRDS]


def missing_binaries(folder: Path) -> list[str]:
    """What the testbed lacks: binaries, and kwok's CRD files (as crds/NAME)."""
    return ([b for b in BINARIES if not os.access(folder / b, os.X_OK)]
            + [f"crds/{f.name}" for f in crd_files(folder) if not f.is_file()])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- certificates ---------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _pem_key(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.TraditionalOpenSSL,
                                   serialization.NoEncryption()))


class Pki:
    """A throwaway CA and the certificates the control plane needs."""

    def __init__(self, folder: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "drill-testbed-ca")])
        self._ca_name = name
        self._ca_cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self._ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(self._now).not_valid_after(self._now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(self._ca_key, hashes.SHA256()))
        from cryptography.hazmat.primitives import serialization

        self.ca = KeyPair(folder / "ca.crt", folder / "ca.key")
        self.ca.cert.write_bytes(self._ca_cert.public_bytes(serialization.Encoding.PEM))
        self.ca.key.write_bytes(_pem_key(self._ca_key))
        self.ca.key.chmod(0o600)

    def issue(self, name: str, common_name: str, *, orgs: tuple[str, ...] = (),
              server_names: tuple[str, ...] = (), server_ips: tuple[str, ...] = ()) -> KeyPair:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        server = bool(server_names or server_ips)
        builder = (
            x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(self._ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(self._now).not_valid_after(self._now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH] if server
                else [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            sans: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
            sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())
        pair = KeyPair(self.folder / f"{name}.crt", self.folder / f"{name}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pair.key.write_bytes(_pem_key(key))
        pair.key.chmod(0o600)
        return pair

    def service_account_keys(self) -> KeyPair:
        """The key the API server signs service-account tokens with (RSA, as kubeadm)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pair = KeyPair(self.folder / "sa.pub", self.folder / "sa.key")
        pair.key.write_bytes(_pem_key(key))
        pair.key.chmod(0o600)
        pair.cert.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return pair


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, ca: Path,
                     users: dict[str, KeyPair], contexts: dict[str, str],
                     current: str) -> None:
    """A self-contained kubeconfig (certificates inline). `contexts`: context -> user."""
    doc = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "drill-testbed", "cluster": {
            "server": server, "certificate-authority-data": _b64(ca)}}],
        "users": [{"name": u, "user": {"client-certificate-data": _b64(p.cert),
                                       "client-key-data": _b64(p.key)}}
                  for u, p in users.items()],
        "contexts": [{"name": c, "context": {"cluster": "drill-testbed", "user": u}}
                     for c, u in contexts.items()],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)


# --- the control plane ----------------------------------------------------------------------

@dataclass
class Ports:
    etcd: int = field(default_factory=free_port)
    etcd_peer: int = field(default_factory=free_port)
    apiserver: int = field(default_factory=free_port)
    controller_manager: int = field(default_factory=free_port)
    scheduler: int = field(default_factory=free_port)
    kwok: int = field(default_factory=free_port)


class ControlPlane:
    """Starts the five programs in order, each waited for by its own health endpoint."""

    def __init__(self, binaries: Path, workdir: Path) -> None:
        self.bin = binaries
        self.dir = workdir
        self.ports = Ports()
        self.supervisor = Supervisor(workdir / "state")
        self.logs = workdir / "logs"
        self.kubeconfig = workdir / "kubeconfig"
        self.timings: dict[str, float] = {}
        self.started: list[str] = []
        self.provisioner: StaticProvisioner | None = None

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def _spec(self, name: str, argv: list[str], port: int) -> ProcessSpec:
        # HOME inside the work folder: nothing reads or writes the user's ~/.kube or ~/.kwok.
        return ProcessSpec(name=name, argv=argv, port=port, log=self.log(name), cwd=self.dir,
                           env={"HOME": str(self.dir / "home")})

    def _start(self, name: str, argv: list[str], port: int,
               ready: Callable[[], bool], timeout: float = 90.0) -> None:
        t0 = time.monotonic()
        self.supervisor.start(self._spec(name, argv, port), ready_timeout=timeout)
        self.started.append(name)

        def healthy() -> bool:
            if self.supervisor.pid(name) is None:
                raise RuntimeError(f"{name} exited; last lines of {self.log(name)}:\n"
                                   + tail_text(self.log(name), 15))
            return ready()

        poll_until(healthy, timeout=timeout, interval=0.2, what=f"{name} to be healthy",
                   retry_on=(OSError, urllib.error.URLError, ValueError))
        self.timings[name] = time.monotonic() - t0

    def _get(self, url: str, *, client: KeyPair | None = None, verify: bool = True) -> str:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca.cert)) if verify \
            else ssl._create_unverified_context()  # components' self-signed serving certs
        if client is not None:
            ctx.load_cert_chain(str(client.cert), str(client.key))
        kwargs: dict[str, Any] = {"context": ctx} if url.startswith("https") else {}
        with urllib.request.urlopen(url, timeout=3, **kwargs) as resp:
            return str(resp.read().decode())

    def start(self) -> None:
        t0 = time.monotonic()
        for sub in ("home", "logs", "etcd-data", "kcm-certs", "scheduler-certs",
                    "apiserver-certs"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.pki = pki = Pki(self.dir / "pki")
        serving = pki.issue("apiserver", "kube-apiserver", server_names=(
            "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local"), server_ips=("127.0.0.1", "10.96.0.1"))
        self.admin = admin = pki.issue("admin", "drill-testbed-admin", orgs=("system:masters",))
        kcm = pki.issue("kcm", "system:kube-controller-manager")
        sched = pki.issue("scheduler", "system:kube-scheduler")
        sa = pki.service_account_keys()
        # kwok's kubelet API (exec, port-forward), reached by the API server at the nodes'
        # InternalIP; the API server presents its own client certificate (kwok checks none).
        kwok_serving = pki.issue("kwok-kubelet", "kwok", server_names=("localhost",),
                                 server_ips=("127.0.0.1",))
        kubelet_client = pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                                   orgs=("system:masters",))
        write_kubeconfig(self.kubeconfig, self.server, pki.ca.cert, {"admin": admin},
                         {CONTEXT: "admin", FOREIGN_CONTEXT: "admin"}, CONTEXT)
        kcm_conf, sched_conf = self.dir / "kcm.kubeconfig", self.dir / "scheduler.kubeconfig"
        write_kubeconfig(kcm_conf, self.server, pki.ca.cert, {"kcm": kcm}, {"kcm": "kcm"}, "kcm")
        write_kubeconfig(sched_conf, self.server, pki.ca.cert, {"s": sched}, {"s": "s"}, "s")
        p = self.ports
        b = self.bin

        self._start("etcd", [
            str(b / "etcd"), "--name=testbed", f"--data-dir={self.dir / 'etcd-data'}",
            f"--listen-client-urls=http://127.0.0.1:{p.etcd}",
            f"--advertise-client-urls=http://127.0.0.1:{p.etcd}",
            f"--listen-peer-urls=http://127.0.0.1:{p.etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p.etcd_peer}",
            f"--initial-cluster=testbed=http://127.0.0.1:{p.etcd_peer}",
            "--unsafe-no-fsync",  # throwaway data on a shared disk: no fsync stalls
            "--log-level=warn",
        ], p.etcd, lambda: '"health":"true"' in self._get(f"http://127.0.0.1:{p.etcd}/health"))

        issuer = "https://kubernetes.default.svc.cluster.local"
        self._start("kube-apiserver", [
            str(b / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{p.etcd}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={p.apiserver}", f"--cert-dir={self.dir / 'apiserver-certs'}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={pki.ca.cert}",
            f"--service-account-issuer={issuer}", f"--api-audiences={issuer}",
            f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true", "--profiling=false",
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-certificate-authority={pki.ca.cert}",
            f"--kubelet-client-certificate={kubelet_client.cert}",
            f"--kubelet-client-key={kubelet_client.key}",
        ], p.apiserver,
            lambda: self._get(f"{self.server}/readyz", client=admin).strip() == "ok",
            timeout=120)

        self._start("kube-controller-manager", [
            str(b / "kube-controller-manager"), f"--kubeconfig={kcm_conf}",
            "--bind-address=127.0.0.1", f"--secure-port={p.controller_manager}",
            f"--cert-dir={self.dir / 'kcm-certs'}", "--leader-elect=false",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={sa.key}", f"--root-ca-file={pki.ca.cert}",
            f"--cluster-signing-cert-file={pki.ca.cert}",
            f"--cluster-signing-key-file={pki.ca.key}",
            "--node-monitor-period=1s", f"--node-monitor-grace-period={NODE_GRACE}",
            "--profiling=false",
        ], p.controller_manager, lambda: self._get(
            f"https://127.0.0.1:{p.controller_manager}/healthz", verify=False) == "ok")

        self._start("kube-scheduler", [
            str(b / "kube-scheduler"), f"--kubeconfig={sched_conf}",
            "--bind-address=127.0.0.1", f"--secure-port={p.scheduler}",
            f"--cert-dir={self.dir / 'scheduler-certs'}", "--leader-elect=false",
            "--profiling=false",
        ], p.scheduler, lambda: self._get(
            f"https://127.0.0.1:{p.scheduler}/healthz", verify=False) == "ok")

        self._install_kwok_crds()
        kwok_conf = self.dir / "kwok.kubeconfig"
        write_kubeconfig(kwok_conf, self.server, pki.ca.cert, {"admin": admin}, {"kwok": "admin"},
                         "kwok")
        self._start("kwok", [
            str(b / "kwok"), f"--kubeconfig={kwok_conf}", "--manage-all-nodes=false",
            f"--manage-nodes-with-label-selector={KWOK_LABEL}=managed",
            "--cidr=10.244.0.1/16", "--node-ip=127.0.0.1",
            f"--server-address=127.0.0.1:{p.kwok}",
            # The nodes' daemonEndpoints.kubeletEndpoint.Port: where the API server sends
            # exec and port-forward (--server-address wins for the listener itself).
            f"--node-port={p.kwok}",
            f"--tls-cert-file={kwok_serving.cert}", f"--tls-private-key-file={kwok_serving.key}",
            f"--enable-crds={','.join(KWOK_CRD_KINDS)}",
            f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
        ], p.kwok, lambda: self._get(f"http://127.0.0.1:{p.kwok}/healthz").strip() == "ok")

        self.api = self.api_client()
        self._create_nodes()
        self._create_storage()
        self.timings["total"] = time.monotonic() - t0

    def _install_kwok_crds(self) -> None:
        """kwok's Exec / PortForward CRDs (kwok watches them from its start)."""
        from kubernetes import client

        api = self.api_client()
        ext = client.ApiextensionsV1Api(api)
        names = []
        for path in crd_files(self.bin):
            doc = yaml.safe_load(path.read_text())
            ext.create_custom_resource_definition(doc)
            names.append(doc["metadata"]["name"])

        def established() -> bool:
            for name in names:
                status = ext.read_custom_resource_definition(name).status
                conds = {c.type: c.status for c in (status.conditions if status else None) or []}
                if conds.get("Established") != "True":
                    return False
            return True

        poll_until(established, timeout=30, interval=0.2, what="kwok's CRDs established")
        api.close()

    def api_client(self, context: str = CONTEXT) -> Any:
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig), context=context)

    def _create_nodes(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        for i, name in enumerate(NODES):
            core.create_node({
                "apiVersion": "v1", "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                    "kwok.x-k8s.io/node": "fake"},
                    "labels": {KWOK_LABEL: "managed", "type": "kwok",
                               "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                               "kubernetes.io/arch": "amd64",
                               "topology.kubernetes.io/zone": f"zone-{i}"}},
                "status": {
                    "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                    "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"}},
            })

        def all_ready() -> bool:
            return all(node_ready(n) == "True" for n in core.list_node().items)

        poll_until(all_ready, timeout=60, interval=0.2, what="three kwok nodes Ready")

    def _create_storage(self) -> None:
        """A default StorageClass named as kind's (`standard`) and the provisioner for it."""
        from kubernetes import client

        client.StorageV1Api(self.api).create_storage_class({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "standard", "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": StaticProvisioner.NAME, "volumeBindingMode": "Immediate",
            "reclaimPolicy": "Delete"})
        self.provisioner = StaticProvisioner(self.api_client(), self.dir / "volumes")
        self.provisioner.start()

    def fingerprint(self) -> dict[str, str]:
        version = json.loads(self._get(f"{self.server}/version", client=self.admin))
        return {"gitVersion": str(version["gitVersion"]), "server": self.server}

    def stop(self) -> dict[str, str]:
        """Stops every started program by its PID, newest first; returns what failed."""
        problems: dict[str, str] = {}
        if self.provisioner is not None:
            self.provisioner.stop()
        for name in reversed(self.started):
            try:
                self.supervisor.stop(name, timeout=20.0)
            except Exception as exc:  # keep stopping the others
                problems[name] = str(exc)
        self.started.clear()
        return problems

    def pids(self) -> dict[str, int | None]:
        return {n: self.supervisor.pid(n) for n in BINARIES if n != "kubectl"}

    def kubectl(self, *args: str, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin / "kubectl"), f"--kubeconfig={self.kubeconfig}",
                f"--context={CONTEXT}", *args]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                             check=False, env={"PATH": os.environ.get("PATH", ""),
                                               "HOME": str(self.dir / "home")})
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({out.returncode}):\n"
                                 f"{out.stdout}\n{out.stderr}")
        return out


def node_ready(node: Any) -> str:
    for cond in (node.status.conditions or []) if node.status else []:
        if cond.type == "Ready":
            return str(cond.status)
    return "Missing"


def pod_ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None or pod.status is None:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


class StaticProvisioner:
    """Creates a hostPath PersistentVolume, pre-bound, for every pending claim of the class
    `standard`: the PV binder of the real controller manager then binds the pair. Stands in
    for kind's local-path provisioner; nothing is ever written to the folders."""

    NAME = "drill.testbed/static"

    def __init__(self, api: Any, folder: Path) -> None:
        self.api = api
        self.folder = folder
        self.created: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pv-provisioner", daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from kubernetes import client, watch

        core = client.CoreV1Api(self.api)
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                # A short server-side timeout: the loop re-checks the stop flag between watches.
                for event in w.stream(core.list_persistent_volume_claim_for_all_namespaces,
                                      timeout_seconds=2):
                    if self._stop.is_set():
                        w.stop()
                        break
                    pvc = event["object"]
                    if event["type"] in ("ADDED", "MODIFIED") and pvc.status.phase == "Pending":
                        self._provision(core, pvc)
            except Exception as exc:  # the API server stopping at the end of the session
                if not self._stop.is_set():
                    self.errors.append(str(exc))
                    self._stop.wait(0.5)  # back off before watching again

    def _provision(self, core: Any, pvc: Any) -> None:
        from kubernetes.client.exceptions import ApiException

        cls = pvc.spec.storage_class_name or "standard"
        if cls != "standard" or pvc.spec.volume_name:
            return
        name = f"pv-{pvc.metadata.uid}"
        size = (pvc.spec.resources.requests or {}).get("storage", "1Gi")
        with suppress(ApiException):  # already created on an earlier event
            core.create_persistent_volume({
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name, "labels": {"drill.testbed/provisioned": "true"}},
                "spec": {
                    "capacity": {"storage": size}, "accessModes": pvc.spec.access_modes,
                    "storageClassName": "standard", "persistentVolumeReclaimPolicy": "Delete",
                    "hostPath": {"path": str(self.folder / name)},
                    "claimRef": {"namespace": pvc.metadata.namespace,
                                 "name": pvc.metadata.name, "uid": pvc.metadata.uid}}})
            self.created.append(name)

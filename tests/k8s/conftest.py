"""The k8s test tier: one real control plane (etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, kwok with three fake nodes) for the whole session, stopped by PID at the end.

The binaries come from `scripts/build-k8s-testbed` (`make test-k8s` runs it first). Without
them (or without kwok's CRDs beside them, crds/) the tier skips locally and FAILS under
CI=true, as does a control plane that cannot start. No container runs on kwok's nodes: kwok
runs exec'd commands on this host and forwards pod ports to local addresses
(test_exec_forward.py); the data plane itself stays on the local target's tests.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s.controlplane import BUILD_SCRIPT, ControlPlane, bin_dir, missing_binaries
from tests.k8s.stack import AppliedStack, apply_stack
from tests.support import missing as missing_requirement


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "k8s: needs the Kubernetes control-plane testbed (scripts/build-k8s-testbed)")


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    folder = bin_dir()
    if missing := missing_binaries(folder):
        msg = (f"k8s testbed binaries missing in {folder}: {', '.join(missing)}; build them "
               f"with {BUILD_SCRIPT.relative_to(BUILD_SCRIPT.parents[1])} (Go >= 1.26 and the "
               "Go module proxy), or `make test-k8s`")
        missing_requirement(msg)
    work = Path(tempfile.mkdtemp(prefix="drill-k8s-"))
    work.chmod(0o755)
    plane = ControlPlane(folder, work)
    try:
        plane.start()
    except BaseException as exc:
        problems = plane.stop()
        # Never a skip: the binaries are there, so a control plane that cannot start is a bug
        # (or a broken machine) that must be seen, under CI and locally alike.
        pytest.fail(f"the k8s control plane did not start: {exc}\nlogs: {plane.logs}"
                    + (f"\nstop problems: {problems}" if problems else ""))
    print(f"\nk8s testbed up in {plane.timings['total']:.1f} s: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in plane.timings.items() if k != "total"))
    try:
        yield plane
    finally:
        problems = plane.stop()
        leftover = {n: p for n, p in plane.pids().items() if p is not None}
        if problems or leftover:
            pytest.fail(f"control plane did not stop cleanly: {problems} {leftover}")
        if not os.environ.get("DRILL_KEEP_K8S_TESTBED"):
            import shutil

            shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def stack(control_plane: ControlPlane) -> Iterator[AppliedStack]:
    """deploy/k8s applied once, server-side, by the kind target's own apply code; every
    StatefulSet and Deployment Ready (kwok marks the pods Ready: no container runs)."""
    applied = apply_stack(control_plane)
    print(f"\nstack applied in {applied.apply_seconds:.1f} s ({applied.documents} objects), "
          f"all workloads Ready {applied.ready_seconds:.1f} s later")
    yield applied

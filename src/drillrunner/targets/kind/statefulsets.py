"""StatefulSets started and stopped as a whole (the order service, Feast's server): scaled to
0 and back, the replica count remembered on the StatefulSet itself so that a crashed drill
can still restore it (KindTarget.scale alone would forget it)."""

from __future__ import annotations

from typing import Any

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.targets.kind.apis import http_status
from drillrunner.targets.pods import KindPods

STOP_TIMEOUT = 60.0
REPLICAS_BEFORE_STOP = "drill.dev/replicas-before-stop"


def read_statefulset(target: KindPods, name: str) -> Any:
    try:
        return target.apis.apps.read_namespaced_stateful_set(name, target.namespace)
    except Exception as exc:
        if http_status(exc) == 404:
            raise ActionFailed(f"no StatefulSet {name} in namespace {target.namespace}: "
                               "run 'drill cluster up'") from None
        raise


def sts_annotations(target: KindPods, name: str) -> dict[str, str]:
    return dict(read_statefulset(target, name).metadata.annotations or {})


def annotate(target: KindPods, name: str, values: dict[str, str | None]) -> None:
    """Set (None: remove) annotations of the StatefulSet (a merge patch)."""
    target.apis.apps.patch_namespaced_stateful_set(
        name, target.namespace, {"metadata": {"annotations": values}})


def stop_statefulset(target: KindPods, name: str, timeout: float = STOP_TIMEOUT) -> None:
    """Scale to 0 and wait until its pods are gone. The replica count is remembered in an
    annotation first (a pod deletion would not do: the controller recreates it at once).
    Idempotent: a second stop keeps the first count."""
    replicas = int(read_statefulset(target, name).spec.replicas or 0)
    if replicas:
        annotate(target, name, {REPLICAS_BEFORE_STOP: str(replicas)})
        target.scale(name, 0)
    remembered = int(sts_annotations(target, name).get(REPLICAS_BEFORE_STOP) or replicas or 1)
    pods = [f"{name}-{i}" for i in range(remembered)]
    try:
        poll_until(lambda: not any(target.pod_exists(p) for p in pods), timeout=timeout,
                   interval=0.5, what=f"the pods of {name} to terminate")
    except WaitTimeout as exc:
        raise StackError(str(exc)) from None


def start_statefulset(target: KindPods, name: str, default: int) -> bool:
    """Scale back to the remembered count (else `default`) if it is at 0; True if it was."""
    if int(read_statefulset(target, name).spec.replicas or 0):
        return False
    remembered = sts_annotations(target, name).get(REPLICAS_BEFORE_STOP)
    target.scale(name, int(remembered) if remembered else default)
    annotate(target, name, {REPLICAS_BEFORE_STOP: None})
    return True


def crashed_exit_code(target: KindPods, pod_name: str) -> int | None:
    """The exit code of the pod's crashed container (terminated, or waiting after a
    failed run); None while it runs or has not run yet."""
    pod = target.pod(pod_name)
    return None if pod is None else pod.crashed_exit_code

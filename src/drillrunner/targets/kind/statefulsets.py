"""StatefulSets started and stopped as a whole (the order service, Feast's server): scaled to
0 and back, the replica count remembered on the StatefulSet itself so that a crashed drill
can still restore it (KindTarget.scale alone would forget it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.targets.kind.apis import http_status

if TYPE_CHECKING:
    from drillrunner.targets.kind.target import KindTarget

STOP_TIMEOUT = 60.0
REPLICAS_BEFORE_STOP = "drill.dev/replicas-before-stop"


def read_statefulset(target: KindTarget, name: str) -> Any:
    try:
        return target.apis.apps.read_namespaced_stateful_set(name, target.namespace)
    except Exception as exc:
        if http_status(exc) == 404:
            raise ActionFailed(f"no StatefulSet {name} in namespace {target.namespace}: "
                               "run 'drill cluster up'") from None
        raise


def sts_annotations(target: KindTarget, name: str) -> dict[str, str]:
    return dict(read_statefulset(target, name).metadata.annotations or {})


def annotate(target: KindTarget, name: str, values: dict[str, str | None]) -> None:
    """Set (None: remove) annotations of the StatefulSet (a merge patch)."""
    target.apis.apps.patch_namespaced_stateful_set(
        name, target.namespace, {"metadata": {"annotations": values}})


def pod_exists(target: KindTarget, name: str) -> bool:
    return target._pod(name) is not None


def stop_statefulset(target: KindTarget, name: str, timeout: float = STOP_TIMEOUT) -> None:
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
        poll_until(lambda: not any(pod_exists(target, p) for p in pods), timeout=timeout,
                   interval=0.5, what=f"the pods of {name} to terminate")
    except WaitTimeout as exc:
        raise StackError(str(exc)) from None


def start_statefulset(target: KindTarget, name: str, default: int) -> bool:
    """Scale back to the remembered count (else `default`) if it is at 0; True if it was."""
    if int(read_statefulset(target, name).spec.replicas or 0):
        return False
    remembered = sts_annotations(target, name).get(REPLICAS_BEFORE_STOP)
    target.scale(name, int(remembered) if remembered else default)
    annotate(target, name, {REPLICAS_BEFORE_STOP: None})
    return True


def crashed_exit_code(target: KindTarget, pod_name: str) -> int | None:
    """The exit code of the pod's crashed container (terminated, or waiting after a
    failed run); None while it runs or has not run yet."""
    pod = target._pod(pod_name)
    if pod is None:
        return None
    for cs in (pod.status.container_statuses if pod.status else None) or []:
        state, last = cs.state, cs.last_state
        if state is not None and state.terminated is not None \
                and state.terminated.exit_code:
            return int(state.terminated.exit_code)
        if state is not None and state.waiting is not None and last is not None \
                and last.terminated is not None and last.terminated.exit_code:
            return int(last.terminated.exit_code)
    return None

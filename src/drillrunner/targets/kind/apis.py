"""The Kubernetes API objects the kind target uses, built for one allowed context.

`KubeApis` is the boundary the unit tests fake: only the methods the target calls are
used (CoreV1Api, AppsV1Api, NetworkingV1Api, VersionApi, and kubernetes.stream.stream).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drillrunner.core.errors import StackError, UsageError
from drillrunner.targets.kind.safety import check_context


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a kubernetes ApiException (duck-typed: no import needed)."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


@dataclass(frozen=True)
class KubeApis:
    core: Any  # kubernetes.client.CoreV1Api
    apps: Any  # kubernetes.client.AppsV1Api
    networking: Any  # kubernetes.client.NetworkingV1Api
    version: Any  # kubernetes.client.VersionApi
    stream: Callable[..., Any]  # kubernetes.stream.stream (exec over the API)
    api_client: Any = None  # for the dynamic client (server-side apply)


def _config_file(kubeconfig: Path | None) -> str:
    """The kubeconfig path(s): the argument, else $KUBECONFIG read NOW (the client reads it
    once at import), else ~/.kube/config."""
    if kubeconfig is not None:
        return str(kubeconfig)
    return os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())


def resolve_context(kubeconfig: Path | None, context: str | None) -> str:
    """The context to use: `context`, else the kubeconfig's current one. Reads the file
    only; contacts no server."""
    if context:
        return context
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=_config_file(kubeconfig))
    except (config.ConfigException, OSError) as exc:
        raise UsageError(f"cannot read the kubeconfig: {exc}; pass --context NAME") from None
    return str((active or {}).get("name") or "")


def connect(kubeconfig: Path | None = None, context: str | None = None) -> tuple[str, KubeApis]:
    """Check the context against the allow-list FIRST, then build the API clients."""
    if context:
        check_context(context)  # before even reading the kubeconfig
    name = check_context(resolve_context(kubeconfig, context))
    from kubernetes import client, config
    from kubernetes.stream import stream

    try:
        api = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=_config_file(kubeconfig), context=name)
    except (config.ConfigException, OSError) as exc:
        raise StackError(f"kube context {name!r}: {exc}") from None
    return name, KubeApis(core=client.CoreV1Api(api), apps=client.AppsV1Api(api),
                          networking=client.NetworkingV1Api(api),
                          version=client.VersionApi(api), stream=stream, api_client=api)


@contextmanager
def own_client(core: Any) -> Iterator[Any]:
    """A CoreV1Api on its own ApiClient, for one websocket call (exec, port-forward).

    kubernetes.stream swaps `call_api` on the ApiClient it is given for the duration of the
    call; on the shared client that would send other threads' REST calls over a websocket
    (or leave the swap in place). Fakes without an api_client are used as they are."""
    api_client = getattr(core, "api_client", None)
    configuration = getattr(api_client, "configuration", None)
    if configuration is None:
        yield core
        return
    from kubernetes import client

    own = client.ApiClient(configuration)
    try:
        yield client.CoreV1Api(own)
    finally:
        own.close()  # type: ignore[no-untyped-call]

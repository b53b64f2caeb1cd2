"""The kube context allow-list: drills delete pods and stop nodes, so never on a cluster
that was not meant for it."""

from __future__ import annotations

import os
from fnmatch import fnmatchcase

from drillrunner.core.errors import UsageError

ENV = "DRILL_KUBE_CONTEXTS"
DEFAULT_PATTERNS = ("kind-*",)


def allowed_patterns(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """Globs from $DRILL_KUBE_CONTEXTS (comma-separated), else `kind-*`."""
    raw = (environ if environ is not None else dict(os.environ)).get(ENV, "")
    patterns = tuple(p.strip() for p in raw.split(",") if p.strip())
    return patterns or DEFAULT_PATTERNS


def check_context(context: str | None, environ: dict[str, str] | None = None) -> str:
    """Return `context` if it is on the allow-list; raise UsageError (exit 2) otherwise."""
    patterns = allowed_patterns(environ)
    if not context:
        raise UsageError("no kube context given and the kubeconfig has no current context: "
                         "pass --context NAME")
    if not any(fnmatchcase(context, p) for p in patterns):
        raise UsageError(
            f"kube context {context!r} is not on the allow-list ({', '.join(patterns)}): "
            f"refusing to touch it; set {ENV}=<comma-separated globs> to allow it")
    return context

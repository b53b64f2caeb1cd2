"""Which target a command drives: `local` (default) or `kind` with a kube context."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drillrunner.core.errors import UsageError
from drillrunner.services.registry import REGISTRY

TARGETS = ("local", "kind")


def open_target(name: str, context: str | None = None, kubeconfig: Path | None = None) -> Any:
    """The target to run on, serving the registry's services. For kind the context is
    checked against the allow-list before any API call; for local, --context makes no
    sense and is refused."""
    if name == "local":
        if context:
            raise UsageError("--context applies to --target kind only")
        from drillrunner.core.paths import state_dir
        from drillrunner.stack.local import LocalTarget

        return LocalTarget(state_dir())
    if name == "kind":
        from drillrunner.targets.kind.target import KindTarget

        return KindTarget.connect(kubeconfig=kubeconfig, context=context,
                                  adapters=REGISTRY.adapters("kind"))
    raise UsageError(f"unknown target {name!r}: choose one of {', '.join(TARGETS)}")

"""Watching the feature server's health endpoint beside its real ability to serve."""

from __future__ import annotations

import time
from typing import Any

from drillrunner.core.actions import action
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext
from drillrunner.services.feast import canary, http
from drillrunner.services.feast.ops import feast_ops

STASH_SAMPLES = "feast.health_samples"


def sample(base_url: str, health_url: str, truth: canary.Truth, timeout: float) -> dict[str, Any]:
    """One look at the health endpoint and one canary read, on the monotonic clock."""
    t = time.monotonic()
    status = http.health(health_url.removesuffix("/health"), timeout)
    error = None
    try:
        wrong = canary.compare(truth, canary.parse_response(
            http.online_features(base_url, tuple(truth), timeout)))
        if wrong:
            error = f"{len(wrong)} wrong, e.g. {wrong[0].describe()}"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:200]
    return {"t": t, "health": status, "features_ok": error is None, "error": error}


@action("feast.observe_health")
def observe_health(ctx: RunContext, duration: Duration = 5.0, interval: Duration = 0.25,
                   health_url: str | None = None, timeout: Duration = 2.0) -> FaultResult:
    """For `duration`, every `interval`: GET the health endpoint (default: feast-0's
    /health) and read the canaries. The samples are what feast.health_reflects_dependencies
    judges: whether health went bad when serving did."""
    ops = feast_ops(ctx.target)
    truth = ops.offline_truth()
    url = health_url or f"{ops.base_url()}/health"
    samples: list[dict[str, Any]] = ctx.stash.setdefault(STASH_SAMPLES, [])
    end = time.monotonic() + duration
    taken = 0
    while time.monotonic() < end and not ctx.stop.is_set():
        samples.append(sample(ops.base_url(), url, truth, timeout))
        taken += 1
        # A sampling schedule, not a wait for a state; ctx.stop ends it early.
        ctx.stop.wait(max(0.0, min(interval, end - time.monotonic())))
    mine = samples[-taken:]
    failing = [s for s in mine if not s["features_ok"]]
    healthy_while_failing = [s for s in failing if s["health"] == 200]
    return FaultResult(
        summary=f"{taken} samples of {url}: canary reads failed in {len(failing)}, "
                f"of which health said 200 in {len(healthy_while_failing)}",
        detail={"health_url": url, "samples": mine[:10]})

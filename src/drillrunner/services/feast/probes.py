"""Read-only observations of the feature server."""

from __future__ import annotations

from drillrunner.core.actions import probe
from drillrunner.engine.context import RunContext
from drillrunner.services.feast import canary, http
from drillrunner.services.feast.ops import feast_ops


@probe("feast.health")
def health(ctx: RunContext) -> bool:
    """GET /health answers 200. Feast's /health only lists projects from its cached
    registry: it says nothing about Redis or the offline store (see
    feast-health-reflects-dependencies)."""
    status = http.health(feast_ops(ctx.target).base_url())
    if status != 200:
        ctx.record("feast.health", status=status)
    return status == 200


@probe("feast.features_correct")
def features_correct(ctx: RunContext) -> bool:
    """The values served for every canary equal the offline truth (the newest row of each
    canary in PostgreSQL). A null is wrong even when its status reads PRESENT."""
    ops = feast_ops(ctx.target)
    truth = ops.offline_truth()
    try:
        served = canary.parse_response(http.online_features(ops.base_url()))
    except Exception as exc:
        ctx.record("feast.features_wrong", error=f"{type(exc).__name__}: {exc}"[:300])
        return False
    wrong = canary.compare(truth, served)
    if wrong:
        ctx.record("feast.features_wrong", wrong=len(wrong), of=canary.value_count(truth),
                   sample=[w.describe() for w in wrong[:5]])
    return not wrong

"""The simulation guard: simulated order paths must never serve production traffic."""

from __future__ import annotations

from orderservice.config import OmsConfig

REFUSAL = "refusing to start: simulation mode is not allowed in production"


def refusal(config: OmsConfig) -> str | None:
    """Why the service must not start, or None. The guard switched off (the broken
    variant) lets a production instance run in simulation mode."""
    if config.environment == "production" and config.simulation and config.simulation_guard:
        return f"{REFUSAL} (environment=production, simulation=true)"
    return None

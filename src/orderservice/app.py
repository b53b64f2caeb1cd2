"""The HTTP API (FastAPI). Handlers are plain functions: FastAPI runs them in its thread
pool, and every dependency call below is bounded in time."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from orderservice.breaker import BreakerState, CircuitBreaker, Transition
from orderservice.config import BreakersFile, KillSwitchConfig, OmsConfig, SwitchState
from orderservice.database import Database, Outcome
from orderservice.killswitch import KillSwitch, Source

log = logging.getLogger("oms")


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_order_id: str = Field(min_length=1, max_length=200)
    symbol: str = Field(default="DRILL", min_length=1, max_length=32)
    quantity: int = Field(default=1, ge=1)


class SwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: SwitchState


@dataclass
class Services:
    config: OmsConfig
    switch: KillSwitch
    breaker: CircuitBreaker
    db: Database
    started_at: float


def _reject(status: int, reason: str, detail: str = "") -> JSONResponse:
    return JSONResponse({"accepted": False, "reason": reason, "detail": detail},
                        status_code=status)


def build(config: OmsConfig, switch: KillSwitchConfig, breakers: BreakersFile) -> Services:
    def logged(t: Transition) -> None:
        log.warning("circuit breaker postgres -> %s (%s)", t.to.value, t.reason)

    cfg = breakers.postgres
    return Services(
        config=config,
        switch=KillSwitch(switch, config.redis),
        breaker=CircuitBreaker("postgres", cfg, on_change=logged),
        db=Database(config.postgres_dsn, config.orders_table, cfg.call_timeout),
        started_at=time.monotonic(),
    )


def create_app(s: Services) -> FastAPI:
    app = FastAPI(title="oms (drill stand-in)", docs_url=None, redoc_url=None)

    @app.get("/livez")
    def livez() -> dict[str, Any]:
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        problems: dict[str, str] = {}
        if (why := s.switch.healthy()) is not None:
            problems["redis"] = why
        pg = s.db.ping()
        if pg.outcome is not Outcome.OK:
            problems["postgres"] = pg.detail
        if s.breaker.state is BreakerState.OPEN:
            problems["circuit_breaker"] = "postgres breaker open"
        checked = s.config.readiness_checks_dependencies
        ready = not problems or not checked
        return JSONResponse({"ready": ready, "problems": problems, "checks_dependencies": checked},
                            status_code=200 if ready else 503)

    @app.post("/orders")
    def create_order(order: OrderIn) -> JSONResponse:
        reading = s.switch.read()
        if (reason := s.switch.blocking_reason(reading)) is not None:
            return _reject(503, reason, reading.error or "")
        if not s.breaker.allow():
            return _reject(503, "circuit-open", "postgres breaker open: rejected fast")
        schema = s.db.ensure_schema()
        result = schema if schema.outcome is not Outcome.OK else s.db.insert_order(
            order.client_order_id, order.symbol, order.quantity)
        if result.outcome is Outcome.OK:
            s.breaker.success()
            return JSONResponse({"accepted": True, "client_order_id": order.client_order_id},
                                status_code=201)
        s.breaker.failure(result.detail)
        if result.outcome is Outcome.UNKNOWN:
            return _reject(504, "database-timeout", result.detail)
        return _reject(503, "database-unavailable", result.detail)

    @app.get("/admin/kill-switch")
    def get_switch() -> dict[str, Any]:
        r = s.switch.read()
        return {"state": r.state.value if r.state else "unknown", "source": r.source.value,
                "blocks_orders": s.switch.blocking_reason(r) is not None, "error": r.error}

    @app.put("/admin/kill-switch")
    def put_switch(body: SwitchIn) -> JSONResponse:
        from orderservice.killswitch import RedisUnavailable

        try:
            s.switch.set(body.state)
        except RedisUnavailable as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        log.warning("kill-switch set to %s by the admin API", body.state.value)
        return JSONResponse({"state": body.state.value, "source": Source.REDIS.value})

    @app.get("/admin/breaker")
    def get_breaker() -> dict[str, object]:
        return s.breaker.snapshot()

    @app.get("/admin/info")
    def info() -> dict[str, Any]:
        return {"pid": os.getpid(), "environment": s.config.environment,
                "simulation": s.config.simulation, "simulation_guard": s.config.simulation_guard,
                "started_at": s.started_at, "uptime_seconds": time.monotonic() - s.started_at}

    return app

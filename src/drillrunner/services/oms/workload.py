"""Sequence-numbered orders: POST /orders, classified for the history.

- 2xx: acknowledged (ok);
- connection refused or not connected in time, any other 4xx/5xx (kill-switch, breaker
  open, database unavailable): certainly not accepted (fail);
- 504 (the OMS's own database call timed out after sending) or no reply in time, or a
  connection dropped after the request was sent: unknown.
Orders are read back from PostgreSQL by client order id.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from drillrunner.core.actions import workload
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpUnknown
from drillrunner.services.oms.ops import oms_ops
from drillrunner.services.timescaledb import sql

WORKLOAD = "oms.orders"
TABLE = "oms_orders"


class OrdersClient:
    """A WorkloadClient placing one order per sequence number."""

    def __init__(self, url: str, dsn: str, run_key: str, timeout: float) -> None:
        import httpx

        self.url = url
        self.dsn = dsn
        self.run_key = run_key
        self.timeout = timeout
        self._http = httpx.Client(timeout=httpx.Timeout(timeout))

    def order_id(self, seq: int) -> str:
        return f"{self.run_key}-{seq}"

    def write(self, seq: int) -> None:
        import httpx

        try:
            r = self._http.post(f"{self.url}/orders", json={"client_order_id": self.order_id(seq)})
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise ActionFailed(f"not connected: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:  # sent, then no (complete) reply
            raise OpUnknown(f"{type(exc).__name__}: {exc}") from None
        if 200 <= r.status_code < 300:
            return
        reason = _reason(r)
        if r.status_code == 504:
            raise OpUnknown(f"HTTP 504 {reason}")
        raise ActionFailed(f"HTTP {r.status_code} {reason}")

    def read_back(self, seqs: Collection[int]) -> set[int]:
        import psycopg

        if not seqs:
            return set()
        ids = [self.order_id(s) for s in seqs]

        def read() -> set[int]:
            rows = sql.fetch(self.dsn, f"SELECT client_order_id FROM {TABLE}"
                             " WHERE client_order_id = ANY(%s)", (ids,), timeout=10.0)
            return {int(str(r[0]).rsplit("-", 1)[1]) for r in rows} | {-1}

        return poll_until(read, timeout=30.0, interval=0.2, what="reading the orders back",
                          retry_on=(psycopg.Error,)) - {-1}

    def close(self) -> None:
        self._http.close()


def _reason(r: Any) -> str:
    try:
        return str(r.json().get("reason", ""))
    except ValueError:
        return str(r.text[:100])


@workload("oms.orders")
def orders(ctx: RunContext, timeout: Duration = 1.0, member: str = "oms-0") -> OrdersClient:
    """POST /orders with client order ids <scenario>-<random>-<seq>; `timeout` bounds each
    request. Accepted orders are read back from PostgreSQL."""
    ops = oms_ops(ctx.target)
    run_key = f"{ctx.scenario}-{uuid.uuid4().hex[:8]}"
    return OrdersClient(ops.url(member), ops.postgres_dsn(), run_key, timeout)

"""Small HTTP helpers for probes and faults; httpx is imported inside the functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Reply:
    status: int | None  # None: no HTTP answer (refused, timed out)
    body: dict[str, Any]
    error: str | None = None


def request(method: str, url: str, *, json: dict[str, Any] | None = None,
            timeout: float = PROBE_TIMEOUT) -> Reply:
    import httpx

    try:
        r = httpx.request(method, url, json=json, timeout=timeout)
    except httpx.HTTPError as exc:
        return Reply(None, {}, f"{type(exc).__name__}: {exc}")
    try:
        body = r.json()
    except ValueError:
        body = {"text": r.text[:200]}
    return Reply(r.status_code, body if isinstance(body, dict) else {"value": body})


def get(url: str, timeout: float = PROBE_TIMEOUT) -> Reply:
    return request("GET", url, timeout=timeout)

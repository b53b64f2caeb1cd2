"""The feature server's HTTP API with the standard library: one bounded attempt per call.

No HTTP client library is needed for three endpoints, and the drill process never imports
feast (2.5-7 s): feast runs only in its own server and CLI processes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from drillrunner.services.feast.canary import CANARIES, FEATURE_SERVICE, JOIN_KEY


class FeastTimeout(Exception):
    """No answer within the time limit: the request may still be running on the server."""


class FeastUnavailable(Exception):
    """The request certainly did not reach the application (connection refused...)."""


class FeastHttpError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:200]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Answer:
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def request(url: str, body: dict[str, Any] | None, timeout: float) -> Answer:
    """GET (body None) or POST JSON; 2xx -> Answer, else FeastHttpError / FeastTimeout /
    FeastUnavailable."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Answer(resp.status, resp.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        raise FeastHttpError(exc.code, exc.read().decode("utf-8", "replace")) from None
    except TimeoutError:
        raise FeastTimeout(f"no answer from {url} within {timeout:g}s") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise FeastTimeout(f"no answer from {url} within {timeout:g}s") from None
        raise FeastUnavailable(f"{url}: {exc.reason}") from None
    except (ConnectionError, OSError) as exc:  # reset or closed mid-answer
        raise FeastTimeout(f"{url}: connection lost: {exc}") from None


def health(base: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of GET /health, None when nothing answered."""
    try:
        return request(f"{base}/health", None, timeout).status
    except FeastHttpError as exc:
        return exc.status
    except (FeastTimeout, FeastUnavailable):
        return None


def online_features(base: str, drivers: tuple[int, ...] = CANARIES,
                    timeout: float = 2.0) -> dict[str, Any]:
    body = {"feature_service": FEATURE_SERVICE, "entities": {JOIN_KEY: list(drivers)}}
    answer: dict[str, Any] = request(f"{base}/get-online-features", body, timeout).json()
    return answer


def materialize(base: str, start: str, end: str, timeout: float = 120.0) -> None:
    """POST /materialize over [start, end] (ISO timestamps, UTC): synchronous."""
    request(f"{base}/materialize", {"start_ts": start, "end_ts": end}, timeout)


def materialize_incremental(base: str, end: str, timeout: float = 120.0) -> None:
    request(f"{base}/materialize-incremental", {"end_ts": end}, timeout)

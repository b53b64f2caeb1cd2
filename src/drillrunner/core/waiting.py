"""Every wait is a poll for a condition, recorded with the monotonic clock (tenacity)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_fixed,
)

from drillrunner.core.errors import DrillError

T = TypeVar("T")


class WaitTimeout(DrillError):
    """A condition did not become true within its time limit."""


def poll_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str,
    retry_on: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `condition` until it returns a truthy value; return that value.

    Exceptions listed in `retry_on` count as "not yet". Raises WaitTimeout naming `what`.
    """
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(interval),
        retry=retry_if_result(lambda r: not r) | retry_if_exception_type(retry_on),
        reraise=False,
    )
    try:
        result: T | None = retrying(condition)
    except RetryError as exc:
        last = exc.last_attempt
        detail = ""
        if last.failed:
            detail = f" (last error: {last.exception()})"
        raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}{detail}") from None
    assert result
    return result


def monotonic() -> float:
    return time.monotonic()

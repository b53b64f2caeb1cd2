"""Durations and rates as written in scenario files ("1.5s", "500ms", "20/s")."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m)\s*$")


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as '250ms', '2s', '1.5m'."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '2s' or '500ms'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _SCALE[m.group(2)]
    else:
        raise ValueError("a duration is a number of seconds or a string like '2s' or '500ms'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def parse_rate(value: Any) -> float:
    """Operations per second from a number or a string such as '20/s' or '600/m'."""
    if isinstance(value, bool):
        raise ValueError("a rate is a number per second or a string like '20/s'")
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str) and (m := _RATE.match(value)):
        rate = float(m.group(1)) / (60.0 if m.group(2) == "m" else 1.0)
    else:
        raise ValueError("a rate is a number per second or a string like '20/s'")
    if not 0 < rate <= 10_000:
        raise ValueError("a rate must be above 0 and at most 10000/s")
    return rate


Duration = Annotated[float, BeforeValidator(parse_duration)]
Rate = Annotated[float, BeforeValidator(parse_rate)]

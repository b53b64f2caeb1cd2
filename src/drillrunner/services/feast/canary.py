"""The canary drivers drills read, and how served values are compared with offline truth.

The offline truth is a PostgreSQL table (created by the deployment) with three rows per
canary dated 2025-01-01 00:00, 01:00 and 02:00 UTC; Feast serves the newest row of each
driver. A served null, a missing entity or any other value is wrong, whatever the
per-value status says (Feast reports PRESENT for the nulls of a flushed online store).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PROJECT = "drill"
FEATURE_SERVICE = "drill_canary"
FEATURE_VIEW = "drill_driver_stats"
TABLE = "drill_driver_stats"
JOIN_KEY = "driver_id"
FEATURES = ("conv_rate", "trips")
CANARIES = (1001, 1002, 1003, 1004, 1005)
HOURS = 3  # rows per canary in the offline table

Value = float | int
Truth = dict[int, dict[str, Value]]


def canary_rows() -> list[tuple[int, int, float, int]]:
    """(driver_id, hour, conv_rate, trips) of every offline row the deployment writes."""
    return [(d, h, round(d / 10000 + h / 100, 6), d * 3 + h)
            for d in CANARIES for h in range(HOURS)]


TRUTH_QUERY = (
    f"SELECT DISTINCT ON ({JOIN_KEY}) {JOIN_KEY}, {', '.join(FEATURES)} FROM {TABLE} "
    f"WHERE {JOIN_KEY} = ANY(%s) ORDER BY {JOIN_KEY}, event_timestamp DESC, created DESC"
)


def truth_from_rows(rows: list[tuple[Any, ...]]) -> Truth:
    return {int(r[0]): {f: r[i + 1] for i, f in enumerate(FEATURES)} for r in rows}


@dataclass(frozen=True)
class Mismatch:
    driver_id: int
    feature: str
    expected: Value | None
    served: Any
    status: str | None

    def describe(self) -> str:
        return (f"{self.driver_id}.{self.feature}: served {self.served!r} "
                f"({self.status}), truth {self.expected!r}")


def parse_response(body: dict[str, Any]) -> dict[int, dict[str, tuple[Any, str | None]]]:
    """/get-online-features' column-wise answer -> {driver: {feature: (value, status)}}."""
    names = list(body["metadata"]["feature_names"])
    results = body["results"]
    ids = results[names.index(JOIN_KEY)]["values"]
    out: dict[int, dict[str, tuple[Any, str | None]]] = {}
    for row, driver in enumerate(ids):
        if driver is None:
            continue
        out[int(driver)] = {
            name: (col["values"][row], (col.get("statuses") or [None] * len(ids))[row])
            for name, col in zip(names, results, strict=True) if name != JOIN_KEY
        }
    return out


def _equal(expected: Value, served: Any) -> bool:
    if served is None or isinstance(served, bool):
        return False
    if isinstance(expected, float) or isinstance(served, float):
        try:
            return math.isclose(float(served), float(expected), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return bool(served == expected)


def compare(truth: Truth, served: dict[int, dict[str, tuple[Any, str | None]]]) -> list[Mismatch]:
    """Every (driver, feature) whose served value differs from the truth (None: missing)."""
    wrong = []
    for driver, features in sorted(truth.items()):
        got = served.get(driver, {})
        for feature, expected in features.items():
            value, status = got.get(feature, (None, "MISSING"))
            if not _equal(expected, value):
                wrong.append(Mismatch(driver, feature, expected, value, status))
    return wrong


def value_count(truth: Truth) -> int:
    return sum(len(f) for f in truth.values())

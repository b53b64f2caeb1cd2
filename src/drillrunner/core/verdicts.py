"""Statuses and typed results shared by the engine, checks and reports."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class OpStatus(StrEnum):
    """How one workload operation ended: acknowledged, refused, or not known either way."""

    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"


UNKNOWN = "unknown"  # a figure the tool could not obtain (the reason is reported beside it)


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"


class Outcome(StrEnum):
    """Scenario and run outcomes (engine/outcome.py holds the rules that choose them)."""

    FAILED = "failed"
    ABORTED = "aborted"
    BASELINE_NOT_MET = "baseline-not-met"
    INTERRUPTED = "interrupted"
    ERROR = "error"
    INCONCLUSIVE = "inconclusive"
    PASSED = "passed"


Measurement = bool | int | float | str | None  # bool first: pydantic would make True 1.0


class CheckResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: Verdict
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    measurements: dict[str, Measurement] = Field(default_factory=dict)


class FaultResult(BaseModel):
    """What a fault or action did: the members it touched and what it observed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    summary: str
    members: list[str] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)
    measurements: dict[str, Measurement] = Field(default_factory=dict)

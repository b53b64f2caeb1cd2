"""Reads a journal back into the facts the reports show."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drillrunner.engine.journal import read
from drillrunner.engine.verdicts import Outcome


@dataclass
class ScenarioView:
    name: str
    title: str = ""
    file: str = ""
    claims: list[str] = field(default_factory=list)
    slo: dict[str, Any] = field(default_factory=dict)
    outcome: str = Outcome.INCONCLUSIVE.value
    reason: str = "the scenario did not finish (no scenario-end in the journal)"
    measurements: dict[str, Any] = field(default_factory=dict)
    checks: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    ops: dict[str, list[int]] = field(default_factory=dict)  # workload -> [ok, fail, unknown]
    points: list[tuple[float, float, str]] = field(default_factory=list)  # invoked, done, status
    faults: list[tuple[float, str]] = field(default_factory=list)  # t invoked, name
    start_mono: float = 0.0
    seconds: float = 0.0


@dataclass
class RunView:
    run_id: str = ""
    target: str = ""
    outcome: str = Outcome.INCONCLUSIVE.value
    started: str = ""
    ended: str = ""
    environment: dict[str, Any] = field(default_factory=dict)
    claims: list[dict[str, str]] = field(default_factory=list)  # the registry at run time
    scenarios: list[ScenarioView] = field(default_factory=list)
    # `audit-rule` events: {rule, claims, verdict PASS/FAIL, findings}, from drill run --audit
    audits: list[dict[str, Any]] = field(default_factory=list)


TIMELINE = {
    "fault-invoke", "fault-return", "action-invoke", "action-return", "recovered",
    "recovery-timeout", "undo-start", "undo-done", "undo-failed", "rollback-start",
    "rollback-done", "rollback-failed", "error", "workload-start", "workload-stop",
}
_OP_INDEX = {"ok": 0, "fail": 1, "unknown": 2}


def load_run(bundle: Path) -> RunView:
    run = RunView()
    current: dict[str, ScenarioView] = {}
    for ev in read(bundle / "journal.jsonl"):
        kind = ev["event"]
        if kind == "run-start":
            run.run_id, run.target = ev["run_id"], ev["target"]
            run.started, run.environment = ev["wall"], ev.get("environment", {})
            run.claims = ev.get("claims_registry", [])
        elif kind == "audit-rule":
            run.audits.append(ev)
        elif kind == "run-end":
            run.outcome, run.ended = ev["outcome"], ev["wall"]
        elif kind == "scenario-start":
            sv = ScenarioView(ev["scenario"], ev.get("title", ""), ev.get("file", ""),
                              ev.get("claims", []), ev.get("slo", {}), start_mono=ev["mono"])
            current[sv.name] = sv
            run.scenarios.append(sv)
        elif (sv_ := current.get(ev.get("scenario", ""))) is not None:
            _scenario_event(sv_, kind, ev)
    return run


def _scenario_event(sv: ScenarioView, kind: str, ev: dict[str, Any]) -> None:
    if kind == "op":
        counts = sv.ops.setdefault(ev["workload"], [0, 0, 0])
        counts[_OP_INDEX[ev["status"]]] += 1
        sv.points.append((ev["invoked"] - sv.start_mono, ev["completed"] - sv.start_mono,
                          ev["status"]))
        return
    if kind == "fault-invoke":
        sv.faults.append((ev["t"] - sv.start_mono, ev["name"]))
    elif kind == "check":
        sv.checks.append(ev)
    elif kind == "scenario-end":
        sv.outcome, sv.reason = ev["outcome"], ev.get("reason", "")
        sv.measurements = ev.get("measurements", {})
        sv.seconds = ev.get("seconds", 0.0)
    elif kind in TIMELINE:
        label = ev.get("name") or ev.get("action") or ev.get("workload") or ""
        detail = ev.get("error") or (ev.get("result") or {}).get("summary", "")
        sv.timeline.append({"t": ev["mono"] - sv.start_mono, "event": kind, "what": label,
                            "detail": detail})

"""Reads a journal back into the facts the reports show."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drillrunner.core.verdicts import UNKNOWN, OpStatus, Outcome
from drillrunner.evidence.events import Event
from drillrunner.evidence.journal import read


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
    undo_failures: list[str] = field(default_factory=list)  # undo actions that failed
    start_mono: float = 0.0
    seconds: float = 0.0
    dry_run: bool = False

    @property
    def exercised(self) -> bool:
        """A fault was injected on the target: the scenario is evidence, not a rehearsal."""
        return bool(self.faults) and not self.dry_run


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
    audit_manifests: list[str] = field(default_factory=list)  # what the static audit read
    # claim -> every scenario of the library citing it; None: the journal predates citations
    claim_citations: dict[str, list[str]] | None = None
    # claim -> every audit rule citing it, whether or not the audit ran; None: not journaled
    audit_citations: dict[str, list[str]] | None = None
    signing: dict[str, Any] | None = None  # {algorithm, fingerprint, public_key}; None: unsigned
    exit_code: int | None = None  # None: the run did not finish (no run-end)

    @property
    def fingerprint(self) -> str:
        return str((self.signing or {}).get("fingerprint") or "unsigned")


TIMELINE = {
    Event.FAULT_INVOKE, Event.FAULT_RETURN, Event.ACTION_INVOKE, Event.ACTION_RETURN,
    Event.RECOVERED, Event.RECOVERY_TIMEOUT, Event.UNDO_START, Event.UNDO_DONE,
    Event.UNDO_FAILED, Event.ROLLBACK_START, Event.ROLLBACK_DONE, Event.ROLLBACK_FAILED,
    Event.ERROR, Event.WORKLOAD_START, Event.WORKLOAD_STOP,
}
_OP_INDEX = {OpStatus.OK: 0, OpStatus.FAIL: 1, OpStatus.UNKNOWN: 2}


def load_run(bundle: Path) -> RunView:
    run = RunView()
    current: dict[str, ScenarioView] = {}
    for ev in read(bundle / "journal.jsonl"):
        kind = ev["event"]
        if kind == Event.RUN_START:
            _run_start(run, ev)
        elif kind == Event.AUDIT_RULE:
            run.audits.append(ev)
        elif kind == Event.RUN_END:
            run.outcome, run.ended = ev["outcome"], ev["wall"]
            run.exit_code = ev.get("exit_code")
        elif kind == Event.SCENARIO_START:
            sv = ScenarioView(ev["scenario"], ev.get("title", ""), ev.get("file", ""),
                              ev.get("claims", []), ev.get("slo", {}), start_mono=ev["mono"],
                              dry_run=bool(ev.get("dry_run", False)))
            current[sv.name] = sv
            run.scenarios.append(sv)
        elif (sv_ := current.get(ev.get("scenario", ""))) is not None:
            _scenario_event(sv_, kind, ev)
    return run


def _run_start(run: RunView, ev: dict[str, Any]) -> None:
    """Fields added over time default to what an older journal implies."""
    run.run_id, run.target = ev.get("run_id", ""), ev.get("target", "")
    run.started, run.environment = ev["wall"], ev.get("environment", {})
    run.claims = ev.get("claims_registry", [])
    run.claim_citations = ev.get("claim_citations")
    run.audit_citations = ev.get("audit_citations")
    run.audit_manifests = list(ev.get("audit_manifests") or [])
    run.signing = ev.get("signing")


def _scenario_event(sv: ScenarioView, kind: str, ev: dict[str, Any]) -> None:
    if kind == Event.OP:
        counts = sv.ops.setdefault(ev["workload"], [0, 0, 0])
        counts[_OP_INDEX[ev["status"]]] += 1
        done = ev.get("completed") or ev["invoked"]  # a stalled op may have no completion
        sv.points.append((ev["invoked"] - sv.start_mono, done - sv.start_mono, ev["status"]))
        return
    if kind == Event.FAULT_INVOKE:
        sv.faults.append((ev.get("t", ev["mono"]) - sv.start_mono, ev["name"]))
    elif kind == Event.CHECK:
        sv.checks.append(ev)
    elif kind == Event.SCENARIO_END:
        sv.outcome, sv.reason = ev["outcome"], ev.get("reason", "")
        sv.measurements = ev.get("measurements", {})
        sv.seconds = ev.get("seconds", 0.0)
        if "undo_failures" in ev:  # older journals: the undo-failed events below
            sv.undo_failures = list(ev["undo_failures"])
    elif kind in TIMELINE:
        if kind == Event.UNDO_FAILED:
            sv.undo_failures.append(str(ev.get("action", "")))
        label = ev.get("name") or ev.get("action") or ev.get("workload") or ""
        detail = ev.get("error") or (ev.get("result") or {}).get("summary", "")
        sv.timeline.append({"t": ev["mono"] - sv.start_mono, "event": kind, "what": label,
                            "detail": detail})


# -- how every report words a scenario's measurements ------------------------------------

def value_text(value: Any) -> str:
    """A measurement as a report shows it: floats to the millisecond, maps as k: v."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {value_text(v)}" for k, v in sorted(value.items()))
    return str(value)


def seconds_text(value: Any) -> str:
    return f"{value:.3f} s" if isinstance(value, int | float) else "n/a"


def rto_text(m: dict[str, Any]) -> str:
    """"X s ± Y s", "> N s" when the service never recovered, or "no outage observed"."""
    if m.get("rto_exceeds_seconds") is not None:
        return f"> {seconds_text(m['rto_exceeds_seconds'])}"
    if m.get("rto_seconds") is not None:
        err = m.get("rto_error_seconds")
        text = seconds_text(m["rto_seconds"])
        text += f" ± {seconds_text(err)}" if err is not None else " (error bar unknown)"
        source = m.get("rto_source")
        return text + (f" (measured by {source})" if source and source != "workload" else "")
    if m.get("outage_observed") is False:
        return "no outage observed"
    return "n/a"


def lost_text(m: dict[str, Any]) -> str:
    """A number, or "unknown (why)" when the read-back failed: never shown as 0."""
    lost = m.get("lost_acknowledged_writes")
    if lost == UNKNOWN:
        return f"unknown ({m.get('lost_unknown_reason') or 'no reason recorded'})"
    return "n/a" if lost is None else str(lost)

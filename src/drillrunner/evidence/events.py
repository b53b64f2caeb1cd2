"""The journal's event names: what the engine and the CLI write, and what the reports,
`drill recover` and `drill verify` read back. The values are the journal's format: an old
journal must still read, so a value never changes.

Service drivers may journal their own observations (`ctx.record("redis.not_ready", ...)`);
those are named by the service and are not listed here.
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    # the run (drill run)
    RUN_START = "run-start"
    RUN_END = "run-end"
    AUDIT_RULE = "audit-rule"
    SCENARIOS_SKIPPED = "scenarios-skipped"
    # one scenario
    SCENARIO_START = "scenario-start"
    SCENARIO_END = "scenario-end"
    ERROR = "error"
    SIGNAL_DEFERRED = "signal-deferred"
    TIMEOUT_DEFERRED = "timeout-deferred"
    DELAY = "delay"
    # probes, by the phase that ran them
    STEADY_STATE = "steady-state"
    STEADY_STATE_AFTER = "steady-state-after"
    STEADY_STATE_RESTORED = "steady-state-restored"
    RECOVERY_PROBE = "recovery-probe"
    # workloads and their operations
    WORKLOAD_START = "workload-start"
    WORKLOAD_STOP = "workload-stop"
    OP = "op"
    # fault and action steps
    FAULT_INVOKE = "fault-invoke"
    FAULT_RETURN = "fault-return"
    ACTION_INVOKE = "action-invoke"
    ACTION_RETURN = "action-return"
    # recovery and checks
    RECOVERED = "recovered"
    RECOVERY_TIMEOUT = "recovery-timeout"
    CHECK = "check"
    # undos of faults, and the scenario's rollback steps
    UNDO_INTENT = "undo-intent"
    UNDO_START = "undo-start"
    UNDO_DONE = "undo-done"
    UNDO_FAILED = "undo-failed"
    ROLLBACK_START = "rollback-start"
    ROLLBACK_DONE = "rollback-done"
    ROLLBACK_FAILED = "rollback-failed"
    # drill recover's replay of pending undos
    RECOVER_START = "recover-start"
    RECOVER_END = "recover-end"


# The three events of one undo, or of one rollback step: (start, done, failed).
UNDO_EVENTS = (Event.UNDO_START, Event.UNDO_DONE, Event.UNDO_FAILED)
ROLLBACK_EVENTS = (Event.ROLLBACK_START, Event.ROLLBACK_DONE, Event.ROLLBACK_FAILED)
# An undo intent is settled by either of these (a rollback step's is journaled as undo).
UNDO_COMPLETED = frozenset({Event.UNDO_DONE, Event.ROLLBACK_DONE})

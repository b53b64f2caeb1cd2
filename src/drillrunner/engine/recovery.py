"""Client-view recovery and data-loss arithmetic over a history (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from drillrunner.engine.history import Op, OpStatus


@dataclass(frozen=True)
class Recovery:
    """The client's unavailability after a fault, from one workload's operations.

    The outage starts with the first operation that failed or did not complete (a stall
    ends as unknown), or at the fault if that operation was already in flight; it ends when
    the first success of a run that lasted `stable` seconds was acknowledged (an operation
    that stalled through the outage and then succeeded started inside it, so its completion,
    not its start, is when the service answered again). The RTO is their distance.

    The error bar brackets the truth. The outage began after the last success before it
    was sent (its answer may have been produced before the fault yet read after it) and
    after the fault; it ended after the last failure was sent (an operation that timed out
    may have met a service already back but slow to answer) and before the success was
    acknowledged. The RTO is off by at most the wider of those two gaps."""

    t_fault: float
    ops_after_fault: int
    outage_observed: bool
    recovered: bool
    rto_seconds: float | None
    rto_error_seconds: float | None
    rto_exceeds_seconds: float | None  # never recovered: the RTO is more than this
    outage_start: float | None
    recovered_at: float | None
    failed_ops: int
    unknown_ops: int

    @property
    def fault_to_recovery_seconds(self) -> float | None:
        return None if self.recovered_at is None else self.recovered_at - self.t_fault


def recovery(ops: Sequence[Op], t_fault: float, stable: float = 0.0,
             min_ops: int = 1) -> Recovery:
    """Recovery of one workload after `t_fault` (see Recovery). Operations are taken in the
    order they completed, so concurrent clients of one workload are judged together."""
    before = [o for o in ops if o.completed < t_fault and o.status is OpStatus.OK]
    after = sorted((o for o in ops if o.completed >= t_fault), key=lambda o: o.completed)
    bad = [o for o in after if o.status is not OpStatus.OK]
    counts = {"failed_ops": sum(o.status is OpStatus.FAIL for o in bad),
              "unknown_ops": sum(o.status is OpStatus.UNKNOWN for o in bad)}
    if not bad:
        lasted = _lasted(after, stable, min_ops)
        return Recovery(t_fault, len(after), False, lasted, None, None, None, None, None,
                        **counts)
    first_bad = min(bad, key=lambda o: o.invoked)
    start = max(first_bad.invoked, t_fault)
    last_bad = bad[-1]
    later = [o for o in after if o.completed > last_bad.completed]
    if not _lasted(later, stable, min_ops):
        seen_until = after[-1].completed
        return Recovery(t_fault, len(after), True, False, None, None,
                        max(0.0, seen_until - start), start, None, **counts)
    first_ok = later[0]
    ok_before = [o.invoked for o in before + after
                 if o.status is OpStatus.OK and o.completed <= first_bad.invoked]
    began_after = max([t_fault, *ok_before])
    start_gap = max(0.0, start - began_after)
    end_gap = first_ok.completed - max(o.invoked for o in bad)
    return Recovery(
        t_fault, len(after), True, True,
        rto_seconds=first_ok.completed - start,
        rto_error_seconds=max(start_gap, end_gap),
        rto_exceeds_seconds=None,
        outage_start=start,
        recovered_at=first_ok.completed,
        **counts,
    )


def _lasted(run: Sequence[Op], stable: float, min_ops: int) -> bool:
    """`run` (all successes, in completion order) covers `stable` seconds and `min_ops`."""
    if len(run) < max(1, min_ops):
        return False
    return run[-1].completed - run[0].completed >= stable


def lasting_success(ops: Sequence[Op], since: float, min_ops: int, min_seconds: float) -> bool:
    """True once the newest run of successes after `since` is long enough to call it up
    (the same rule `recovery` applies afterwards, so the two never disagree)."""
    run: list[Op] = []
    for op in sorted((o for o in ops if o.invoked >= since), key=lambda o: o.completed):
        run = [*run, op] if op.status is OpStatus.OK else []
    return _lasted(run, min_seconds, min_ops)


@dataclass(frozen=True)
class Loss:
    acknowledged: int
    lost: list[int]
    lost_first_ack: float | None
    lost_last_ack: float | None
    failed_but_present: int

    @property
    def span_seconds(self) -> float | None:
        if self.lost_first_ack is None or self.lost_last_ack is None:
            return None
        return self.lost_last_ack - self.lost_first_ack


def loss(ops: Sequence[Op], present: set[int]) -> Loss:
    """Acknowledged operations missing from the store, and failed ones found in it."""
    acked = {o.seq: o for o in ops if o.status is OpStatus.OK}
    lost = sorted(s for s in acked if s not in present)
    times = [acked[s].completed for s in lost]
    failed_present = sum(1 for o in ops if o.status is OpStatus.FAIL and o.seq in present)
    return Loss(len(acked), lost, min(times, default=None), max(times, default=None),
                failed_present)

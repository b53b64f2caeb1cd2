"""Client-view recovery and data-loss arithmetic over a history (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from drillrunner.engine.history import Op, OpStatus


@dataclass(frozen=True)
class Recovery:
    """RTO = first lasting success - fault invoked; the true recovery instant lies between
    the last observed failure and that success, so their distance is the error bar."""

    outage_observed: bool
    recovered: bool
    rto_seconds: float | None
    rto_error_seconds: float | None
    unavailable_seconds: float | None
    failed_ops: int
    first_failure: float | None
    last_failure: float | None
    first_lasting_success: float | None


def recovery(ops: Sequence[Op], t_fault: float) -> Recovery:
    """Recovery of one workload's ops (one client thread, so ordered) after `t_fault`."""
    after = sorted((o for o in ops if o.completed >= t_fault), key=lambda o: o.invoked)
    bad = [o for o in after if o.status is not OpStatus.OK]
    if not bad:
        gaps = [b.completed - a.completed for a, b in pairwise(after)]
        # No operation failed: any outage was shorter than the widest gap between ops.
        err = max(gaps, default=None)
        return Recovery(False, True, 0.0, err, 0.0, 0, None, None, None)
    last_bad = bad[-1]
    later_ok = [o for o in after if o.invoked >= last_bad.completed and o.status is OpStatus.OK]
    if not later_ok:
        return Recovery(
            True, False, None, None, None, len(bad), bad[0].invoked, last_bad.completed, None
        )
    first_ok = later_ok[0]
    rto = first_ok.completed - t_fault
    return Recovery(
        outage_observed=True,
        recovered=True,
        rto_seconds=rto,
        rto_error_seconds=first_ok.completed - last_bad.completed,
        unavailable_seconds=first_ok.completed - bad[0].invoked,
        failed_ops=len(bad),
        first_failure=bad[0].invoked,
        last_failure=last_bad.completed,
        first_lasting_success=first_ok.completed,
    )


def lasting_success(ops: Sequence[Op], since: float, min_ops: int, min_seconds: float) -> bool:
    """True once the newest run of successes after `since` is long enough to call it up."""
    run: list[Op] = []
    for op in sorted((o for o in ops if o.invoked >= since), key=lambda o: o.invoked):
        run = [*run, op] if op.status is OpStatus.OK else []
    if len(run) < min_ops:
        return False
    return run[-1].completed - run[0].invoked >= min_seconds


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

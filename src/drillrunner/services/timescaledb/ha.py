"""What the HA manager does, observed: planned switchovers, and a watch on every member's
writability that shows whether two members ever acknowledged writes as primaries.

The watch probes each member directly (not through the multi-host connection, which
follows one primary and would never see a second) with a small transactional write. A
write a member acknowledges proves it was a writable primary at that moment; under
synchronous replication an old primary that lost its standby cannot acknowledge one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from drillrunner.core.actions import action, check, fault
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import CheckResult, FaultResult, Measurement, Verdict
from drillrunner.core.waiting import monotonic
from drillrunner.engine.context import RunContext
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.ops import SERVICE, PostgresOps, PredictsFailover, pg_ops
from drillrunner.services.timescaledb.roles import Role, member_roles, the_primary

WATCH_KEY = "timescaledb.primary_watch"


@dataclass(frozen=True)
class Ack:
    """A write probe `member` acknowledged between `invoked` and `completed`."""

    member: str
    invoked: float
    completed: float


@dataclass(frozen=True)
class Reign:
    """A run of consecutive acknowledgements by one member."""

    member: str
    first: float
    last: float
    acks: int


def reigns(acks: list[Ack]) -> list[Reign]:
    """Group the acknowledgements, in completion order, into runs by member."""
    out: list[Reign] = []
    for a in sorted(acks, key=lambda a: a.completed):
        if out and out[-1].member == a.member:
            r = out[-1]
            out[-1] = Reign(r.member, r.first, a.completed, r.acks + 1)
        else:
            out.append(Reign(a.member, a.completed, a.completed, 1))
    return out


def second_primaries(acks: list[Ack]) -> list[Reign]:
    """Runs by a member that had already been replaced: after B acknowledged a write, A
    acknowledging one again means both were writable primaries (split brain)."""
    seen: list[str] = []
    bad: list[Reign] = []
    for r in reigns(acks):
        if r.member in seen:
            bad.append(r)
        else:
            seen.append(r.member)
    return bad


class PrimaryWatch:
    """One thread per member, each probing that member's writability every `interval`."""

    def __init__(self, ops: PostgresOps, members: list[str], interval: float,
                 timeout: float, duration: float) -> None:
        self.ops = ops
        self.interval = interval
        self.timeout = timeout
        self.deadline = monotonic() + duration
        self.acks: list[Ack] = []
        self.probes = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(m,), daemon=True,
                                          name=f"primary-watch-{m}") for m in members]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 3)

    def _loop(self, member: str) -> None:
        while not self._stop.is_set() and monotonic() < self.deadline:
            invoked = monotonic()
            if self._probe(member):
                with self._lock:
                    self.acks.append(Ack(member, invoked, monotonic()))
            with self._lock:
                self.probes += 1
            self._stop.wait(max(0.0, self.interval - (monotonic() - invoked)))

    def _probe(self, member: str) -> bool:
        try:
            with sql.connect(self.ops.dsn(member, self.timeout), self.timeout,
                             for_writes=True) as conn:
                sql.execute_bounded(conn, sql.WRITE_PROBE, [], self.timeout)
            return True
        except Exception:  # refused, read-only, frozen, timed out: not writable now
            return False


def _watch(ctx: RunContext) -> PrimaryWatch | None:
    watch = ctx.stash.get(WATCH_KEY)
    if isinstance(watch, PrimaryWatch):
        watch.stop()
        return watch
    return None


NO_WATCH = CheckResult(verdict=Verdict.UNKNOWN,
                       summary="no primary watch ran (add timescaledb.watch_primaries)")


def _evidence(watch: PrimaryWatch, runs: list[Reign]) -> dict[str, object]:
    return {"probes": watch.probes, "acknowledged": len(watch.acks),
            "reigns": [{"member": r.member, "first": round(r.first, 3),
                        "last": round(r.last, 3), "acks": r.acks} for r in runs]}


@action("timescaledb.watch_primaries")
def watch_primaries(ctx: RunContext, interval: Duration = 0.1, timeout: Duration = 0.5,
                    duration: Duration = 300.0) -> FaultResult:
    """Start probing every member's writability until the check
    timescaledb.single_writable_primary reads the result (or `duration` passes)."""
    ops = pg_ops(ctx.target)
    members = [m.name for m in ctx.target.members(SERVICE) if m.name != ops.pitr_member().name]
    watch = PrimaryWatch(ops, members, interval, timeout, duration)
    ctx.stash[WATCH_KEY] = watch
    watch.start()
    return FaultResult(summary=f"watching the writability of {', '.join(members)} every "
                       f"{interval:g}s", members=members)


@check("timescaledb.single_writable_primary")
def single_writable_primary(ctx: RunContext) -> CheckResult:
    """Never two writable primaries: once another member has acknowledged writes, the
    one it replaced acknowledges none (needs timescaledb.watch_primaries first)."""
    watch = _watch(ctx)
    if watch is None:
        return NO_WATCH
    runs = reigns(watch.acks)
    evidence = _evidence(watch, runs)
    if not watch.acks:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence,
                           summary="no member acknowledged a write probe: nothing observed")
    bad = second_primaries(watch.acks)
    measured: dict[str, Measurement] = {"second_primary_acks": sum(r.acks for r in bad)}
    if bad:
        first = bad[0]
        return CheckResult(
            verdict=Verdict.FAIL, evidence=evidence, measurements=measured,
            summary=(f"two writable primaries: {first.member} acknowledged {first.acks} "
                     f"write(s) after another member had taken over "
                     f"({len(bad)} such run(s))"))
    order = " -> ".join(r.member for r in runs)
    return CheckResult(verdict=Verdict.PASS, evidence=evidence, measurements=measured,
                       summary=f"one writable primary at a time ({order}; "
                       f"{len(watch.acks)} acknowledged probes of {watch.probes})")


@fault("timescaledb.switchover", undo="timescaledb.heal_cluster")
def switchover(ctx: RunContext, candidate: str | None = None,
               timeout: Duration = 60.0) -> FaultResult:
    """A planned switchover by Patroni (what `patronictl switchover` asks for): the
    leader hands over to `candidate` (the sync standby by default) and rejoins as its
    standby. Measured from the request until the new leader commits a write."""
    ops = pg_ops(ctx.target)
    roles = member_roles(ctx.target)
    old = [n for n, r in roles.items() if r == Role.PRIMARY]
    if len(old) != 1:
        raise ActionFailed(f"a switchover needs one primary; roles are {roles}")
    ctx.will_undo("timescaledb.heal_cluster")
    started = monotonic()
    new = ops.switchover(candidate, timeout)
    answered = monotonic()
    sql.wait_writable(ops.dsn(new), timeout=timeout, what=f"{new} to accept writes")
    ready = monotonic()
    return FaultResult(
        summary=f"Patroni switched over from {old[0]} to {new} in {ready - started:.3f}s",
        members=[old[0], new], detail={"from": old[0], "to": new},
        measurements={"switchover_seconds": round(answered - started, 3),
                      "ready_seconds": round(ready - started, 3)})


@check("timescaledb.primary_unchanged")
def primary_unchanged(ctx: RunContext) -> CheckResult:
    """Only the first primary ever acknowledged writes: no other member was promoted
    (for scenarios where promoting any replica would be unsafe)."""
    watch = _watch(ctx)
    if watch is None:
        return NO_WATCH
    runs = reigns(watch.acks)
    evidence = _evidence(watch, runs)
    if not runs:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence,
                           summary="no member acknowledged a write probe: nothing observed")
    others = sorted({r.member for r in runs[1:] if r.member != runs[0].member})
    measured: dict[str, Measurement] = {
        "acks_by_other_members": sum(r.acks for r in runs if r.member != runs[0].member)}
    if others:
        return CheckResult(verdict=Verdict.FAIL, evidence=evidence, measurements=measured,
                           summary=f"{', '.join(others)} became a writable primary in place "
                           f"of {runs[0].member}")
    return CheckResult(verdict=Verdict.PASS, evidence=evidence, measurements=measured,
                       summary=f"{runs[0].member} stayed the only writable primary")


def _fault_time(ctx: RunContext, name: str, end: bool) -> float | None:
    found = [f for f in ctx.history.steps() if f.name == name and f.ok]
    if not found:
        return None
    return found[0].returned if end else found[0].invoked


@check("timescaledb.no_writes_during")
def no_writes_during(ctx: RunContext, from_fault: str, until_fault: str,
                     grace: Duration = 0.0) -> CheckResult:
    """No member acknowledged a write from `grace` after `from_fault` returned until
    `until_fault` began: e.g. a leader cut off from its DCS must stop taking writes
    once its lock can have expired (ttl), or another member could be promoted beside it."""
    watch = _watch(ctx)
    if watch is None:
        return NO_WATCH
    start, end = _fault_time(ctx, from_fault, True), _fault_time(ctx, until_fault, False)
    if start is None or end is None:
        return CheckResult(verdict=Verdict.UNKNOWN,
                           summary=f"{from_fault} or {until_fault} did not run")
    start += grace
    inside = [a for a in watch.acks if a.completed > start and a.invoked < end]
    before = [a for a in watch.acks if a.completed <= start]
    evidence = {"window_seconds": round(end - start, 3), "grace_seconds": grace,
                "acks_in_window": [{"member": a.member, "at": round(a.completed - start, 3)}
                                   for a in inside[:20]],
                "last_ack_before_window": round(before[-1].completed - start, 3)
                if before else None}
    if end <= start:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence,
                           summary=f"{until_fault} came before the grace of {grace:g}s ended")
    if not before:
        return CheckResult(verdict=Verdict.UNKNOWN, evidence=evidence,
                           summary="no write was acknowledged before the window: the watch "
                           "saw no primary to stop")
    measured: dict[str, Measurement] = {"acks_in_window": len(inside)}
    if inside:
        members = sorted({a.member for a in inside})
        return CheckResult(verdict=Verdict.FAIL, evidence=evidence, measurements=measured,
                           summary=f"{', '.join(members)} acknowledged {len(inside)} write(s) "
                           f"during the {end - start:.1f}s window")
    return CheckResult(verdict=Verdict.PASS, evidence=evidence, measurements=measured,
                       summary=f"no write acknowledged for {end - start:.1f}s, from {grace:g}s "
                       f"after {from_fault} until {until_fault}")


@action("timescaledb.bulk_write")
def bulk_write(ctx: RunContext, size: str = "4MB", timeout: Duration = 3.0) -> FaultResult:
    """One transaction of about `size` of WAL on the primary, abandoned after `timeout`
    if its commit is not acknowledged (synchronous replication with a stalled standby):
    the primary's WAL position moves on either way, which is what Patroni compares a
    replica's position with before promoting it."""
    units = {"KB": 1024, "MB": 1024**2}
    number, unit = size[:-2], size[-2:].upper()
    if unit not in units or not number.isdigit():
        raise ActionFailed(f"size {size!r}: give a whole number of KB or MB, e.g. 4MB")
    nbytes = int(number) * units[unit]
    ops = pg_ops(ctx.target)
    primary = the_primary(ctx.target).name
    before = sql.fetch_value(ops.dsn(primary), "SELECT pg_current_wal_lsn()::text")
    acknowledged = True
    try:
        with sql.connect(ops.dsn(primary, timeout), timeout, for_writes=True) as conn:
            # A transactional WAL message: WAL of the given size, no table needed.
            sql.execute_bounded(conn, "SELECT pg_logical_emit_message(true, 'drill-bulk', "
                                "repeat('x', $1::int))", [str(nbytes)], timeout)
    except sql.Indeterminate:
        acknowledged = False
    after = sql.fetch_value(ops.dsn(primary), "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), "
                            "%s::pg_lsn)", (before,))
    wal = int(float(after or 0))
    return FaultResult(
        summary=f"wrote {wal / 1048576:.1f} MB of WAL on {primary}; the commit was "
        + ("acknowledged" if acknowledged else f"not acknowledged within {timeout:g}s"),
        members=[primary], detail={"acknowledged": acknowledged},
        measurements={"wal_bytes": wal})


@check("timescaledb.failover_as_predicted")
def failover_as_predicted(ctx: RunContext, from_fault: str = "timescaledb.kill_primary",
                          slack: Duration = 3.0) -> CheckResult:
    """The failover took as long as the HA manager's own settings predict: the client's
    writes came back between ttl - loop_wait and ttl + loop_wait after `from_fault`, give
    or take `slack` (the client's reconnect). Slower means Patroni did not act on its
    timings (an overloaded DCS, a stuck loop); faster means the lock was not left to
    expire, so something else released it."""
    ops = pg_ops(ctx.target)
    if not isinstance(ops, PredictsFailover):
        return CheckResult(verdict=Verdict.UNKNOWN,
                           summary=f"target {ctx.target.name!r} does not know its HA timings")
    rec, fault_at = ctx.recovery, _fault_time(ctx, from_fault, False)
    if rec is None or rec.recovered_at is None or fault_at is None:
        return CheckResult(verdict=Verdict.UNKNOWN,
                           summary=f"no recovery after {from_fault} was measured")
    low, high = ops.predicted_failover()
    took = rec.recovered_at - fault_at
    measured: dict[str, Measurement] = {"predicted_min_s": low, "predicted_max_s": high,
                                        "fault_to_recovery_s": round(took, 3)}
    inside = low - slack <= took <= high + slack
    return CheckResult(
        verdict=Verdict.PASS if inside else Verdict.FAIL, measurements=measured,
        summary=f"writes back {took:.2f}s after {from_fault}; Patroni's settings predict "
        f"{low:g}-{high:g}s (+/- {slack:g}s)")

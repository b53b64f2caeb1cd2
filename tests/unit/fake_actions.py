"""A tiny in-process "service" to test the engine's ordering and rollback logic.

It stands in for nothing real: the engine's order of phases is the thing under test here;
real faults on real servers are tested under tests/integration.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Collection
from typing import Any

from drillrunner.core.actions import action, check, fault, probe, workload
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import CheckResult, FaultResult, Verdict
from drillrunner.engine.context import RunContext


class FakeTarget:
    name = "fake"

    def __init__(self) -> None:
        self.up = True
        self.log: list[str] = []
        self.store: set[int] = set()
        self.drop_after_fault = False


def _t(ctx: RunContext) -> Any:
    return ctx.target


@probe("fake.ready")
def ready(ctx: RunContext) -> bool:
    return bool(_t(ctx).up)


@fault("fake.break_it", undo="fake.fix")
def break_it(ctx: RunContext, lose_writes: bool = False, outage: Duration = 0.3) -> FaultResult:
    t = _t(ctx)
    ctx.will_undo("fake.fix")
    t.log.append("break")
    t.up = False
    if lose_writes:
        t.store.clear()
    ctx.stash["heal_at"] = time.monotonic() + outage
    return FaultResult(summary="broken")


@fault("fake.no_effect", undo="fake.fix")
def no_effect(ctx: RunContext) -> FaultResult:
    """A fault the workload never notices."""
    ctx.will_undo("fake.fix")
    _t(ctx).log.append("no-effect")
    return FaultResult(summary="nothing happened")


@fault("fake.break_undo", undo="fake.fix_fails")
def break_undo(ctx: RunContext) -> FaultResult:
    """A short outage whose undo fails."""
    ctx.will_undo("fake.fix_fails")
    _t(ctx).log.append("break")
    _t(ctx).up = False
    ctx.stash["heal_at"] = time.monotonic() + 0.2
    return FaultResult(summary="broken")


@fault("fake.measured_restore", undo="fake.fix", disrupts=0)
def measured_restore(ctx: RunContext, seconds: Duration | None = 0.5) -> FaultResult:
    """A restore that measures its own RTO (None: it never finished)."""
    ctx.will_undo("fake.fix")
    _t(ctx).log.append("restore")
    return FaultResult(summary="restored", measurements={"rto_seconds": seconds,
                                                         "rto_error_seconds": 0.01})


@fault("fake.unreadable", undo="fake.fix")
def unreadable(ctx: RunContext) -> FaultResult:
    """A short outage after which the store cannot be read back."""
    ctx.will_undo("fake.fix")
    _t(ctx).up = False
    _t(ctx).unreadable = True
    ctx.stash["heal_at"] = time.monotonic() + 0.2
    return FaultResult(summary="broken")


@fault("fake.interrupt_me", undo="fake.fix")
def interrupt_me(ctx: RunContext) -> FaultResult:
    ctx.will_undo("fake.fix")
    _t(ctx).log.append("interrupt")
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    return FaultResult(summary="not reached")


@fault("fake.crash_after_intent", undo="fake.fix")
def crash_after_intent(ctx: RunContext) -> FaultResult:
    ctx.will_undo("fake.fix")
    _t(ctx).log.append("half-broken")
    _t(ctx).up = False
    raise RuntimeError("fault bug after its undo was journaled")


@fault("fake.hang", undo="fake.fix")
def hang(ctx: RunContext, seconds: Duration = 30.0) -> FaultResult:
    ctx.will_undo("fake.fix")
    _t(ctx).log.append("hang")
    try:
        time.sleep(seconds)
    except Exception:  # a careless fault must not swallow the deadline
        _t(ctx).log.append("swallowed")
    return FaultResult(summary="not reached")


@fault("fake.break_two", undo="fake.fix", disrupts=2)
def break_two(ctx: RunContext) -> FaultResult:
    ctx.will_undo("fake.fix")
    return FaultResult(summary="two down")


@fault("fake.break_tier", undo="fake.fix", disrupts="all")
def break_tier(ctx: RunContext) -> FaultResult:
    ctx.will_undo("fake.fix")
    return FaultResult(summary="tier down")


@action("fake.fix")
def fix(ctx: RunContext) -> FaultResult:
    _t(ctx).log.append("fix")
    _t(ctx).up = True
    return FaultResult(summary="fixed")


@action("fake.fix_fails")
def fix_fails(ctx: RunContext) -> FaultResult:
    """Fails until the target is repaired (`repaired = True`), as a member that will not
    come back until someone fixes it."""
    if getattr(_t(ctx), "repaired", False):
        _t(ctx).log.append("fix")
        _t(ctx).up = True
        return FaultResult(summary="fixed")
    _t(ctx).log.append("fix-failed")
    raise RuntimeError("the member would not come back")


@action("fake.note")
def note(ctx: RunContext, text: str) -> FaultResult:
    _t(ctx).log.append(text)
    return FaultResult(summary=text)


class Client:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def write(self, seq: int) -> None:
        t = _t(self.ctx)
        if not t.up and time.monotonic() >= self.ctx.stash.get("heal_at", 0):
            t.up = True
        if not t.up:
            raise ConnectionError("down")
        t.store.add(seq)

    def read_back(self, seqs: Collection[int]) -> set[int]:
        if getattr(_t(self.ctx), "unreadable", False):
            raise ConnectionError("OFFSET_NOT_AVAILABLE")
        return set(seqs) & _t(self.ctx).store

    def close(self) -> None:
        pass


@workload("fake.writes")
def writes(ctx: RunContext) -> Client:
    return Client(ctx)


@check("fake.crashes")
def crashes(ctx: RunContext) -> CheckResult:
    raise RuntimeError("checker bug")


@check("fake.passes")
def passes(ctx: RunContext) -> CheckResult:
    return CheckResult(verdict=Verdict.PASS, summary="fine")


@action("fake.restart_replica")
def restart_replica(ctx: RunContext) -> FaultResult:
    """An undo journaled first: the replica comes back."""
    _t(ctx).log.append("restart_replica")
    _t(ctx).replica_up = True
    return FaultResult(summary="replica up")


@action("fake.rematerialize")
def rematerialize(ctx: RunContext) -> FaultResult:
    """An undo journaled later that needs the replica an older undo brings back."""
    _t(ctx).log.append("rematerialize")
    if not getattr(_t(ctx), "replica_up", False):
        raise RuntimeError("no replica to read from")
    return FaultResult(summary="rematerialized")

"""What several services share: readiness waits, a local deployment's waits, the kill
of a named member."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from drillrunner.core.errors import StackError
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.services.paused import is_stopped, wait_stopped
from drillrunner.targets.base import MemberRef, Signal, Target

T = TypeVar("T")


class Verdict(Protocol):
    """A readiness judgement: ready, or the problems that keep it from being so."""

    @property
    def ready(self) -> bool: ...

    @property
    def problems(self) -> list[str]: ...


V = TypeVar("V", bound=Verdict)


def wait_verdict(judge: Callable[[], V], *, timeout: float, interval: float, what: str) -> V:
    """Judge until the verdict is ready and return it; a timeout (WaitTimeout) lists the
    problems the last verdict named."""
    last: list[V] = []

    def check() -> V | None:
        verdict = judge()
        last[:] = [verdict]
        return verdict if verdict.ready else None

    try:
        return poll_until(check, timeout=timeout, interval=interval, what=what)
    except WaitTimeout as exc:
        detail = "; ".join(last[0].problems) if last else ""
        raise WaitTimeout(f"{exc}: {detail}") from None


def wait_or_fail(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    retry_on: tuple[type[BaseException], ...] = (),
    log: Path | None = None,
    last: Callable[[], object] | None = None,
) -> T:
    """poll_until for bringing a stack up: a timeout is the stack's error (StackError), naming
    the member's log or the last answer seen (`last()`), so `drill stack up` says why."""
    try:
        return poll_until(condition, timeout=timeout, interval=interval, what=what,
                          retry_on=retry_on)
    except WaitTimeout as exc:
        if log is not None:
            raise StackError(f"{exc}; see {log}") from None
        if last is not None:
            raise StackError(f"{exc}: {last()}") from None
        raise StackError(str(exc)) from None


def kill_named(ctx: RunContext, service: str, member: str, signal: Signal,
               roles: Callable[[Target], dict[str, str]]) -> FaultResult:
    """Kill one named member of `service`, its undo `<service>.restart_member` journaled
    first; the result names the role it had (`roles` of the service)."""
    ref = ctx.target.member(service, member)
    role = roles(ctx.target).get(member)
    ctx.will_undo(f"{service}.restart_member", member=member)
    ctx.target.kill(ref, signal)
    return FaultResult(summary=f"killed {member} ({role}) with SIG{signal}",
                       members=[member], detail={"signal": str(signal), "role": role})


def pause_named(ctx: RunContext, service: str, member: str,
                roles: Callable[[Target], dict[str, str]]) -> FaultResult:
    """Freeze one named member of `service` (SIGSTOP locally), its undo
    `<service>.resume_member` journaled first; returns once the pause is seen to land."""
    ref = ctx.target.member(service, member)
    role = roles(ctx.target).get(member)
    ctx.will_undo(f"{service}.resume_member", member=member)
    ctx.target.pause(ref)
    wait_stopped(ctx.target, ref)
    return FaultResult(summary=f"paused {member} ({role})", members=[member],
                       detail={"role": role})


def resume_if_paused(ctx: RunContext, ref: MemberRef) -> bool:
    """Resume the member if it is paused (idempotent); whether it was. Paused alone decides:
    an isolated pod (kind's pause) may also have turned NotReady."""
    if not is_stopped(ctx.target, ref):
        return False
    ctx.target.resume(ref)
    return True

"""The echo service's one fault, in the house style: journal the undo, then act."""

from __future__ import annotations

from drillrunner.core.actions import action, fault
from drillrunner.core.verdicts import FaultResult
from drillrunner.engine.context import RunContext


@fault("echo.kill", undo="echo.start")
def kill(ctx: RunContext, member: str = "echo-0") -> FaultResult:
    """Kill the server. Undo: start it."""
    ref = ctx.target.member("echo", member)
    ctx.will_undo("echo.start", member=member)
    ctx.target.kill(ref)
    return FaultResult(summary=f"killed {member}", members=[member])


@action("echo.start")
def start(ctx: RunContext, member: str = "echo-0") -> None:
    """Start the server again (idempotent)."""
    ref = ctx.target.member("echo", member)
    if not ctx.target.is_running(ref):
        ctx.target.start(ref)

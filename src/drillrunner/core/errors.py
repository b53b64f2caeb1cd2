"""One exception hierarchy; the CLI turns it into exit codes in one place."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    PASSED = 0
    FAILED = 1
    USAGE = 2
    INCONCLUSIVE = 3
    INTERRUPTED = 130


class DrillError(Exception):
    """Base of every error drill reports to the user as one clear line."""

    exit_code: ExitCode = ExitCode.INCONCLUSIVE


class UsageError(DrillError):
    """Bad command-line input: unknown scenario, unknown target, bad option value."""

    exit_code = ExitCode.USAGE


class InvalidInput(DrillError):
    """Scenario or drill files that do not validate; carries every problem found."""

    exit_code = ExitCode.USAGE

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class StackError(DrillError):
    """The stack cannot be started, reached or changed as asked."""


class MissingBinary(StackError):
    """A server binary is not installed; the message says what to install."""


class LockHeld(DrillError):
    """Another drill holds the target's lock, or a dead one left it behind."""


class ActionFailed(DrillError):
    """A fault, probe or rollback could not do what it was asked."""

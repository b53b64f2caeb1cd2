"""A thread-safe circuit breaker: closed -> open after N consecutive failures within a
window -> half-open after a cool-down (one trial call) -> closed on success."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from orderservice.config import BreakerConfig


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"
    DISABLED = "disabled"  # no breaker: every call goes through (the broken variant)


@dataclass(frozen=True)
class Transition:
    at: float  # time.monotonic(): CLOCK_MONOTONIC is system-wide, so a drill can compare
    to: BreakerState
    reason: str


@dataclass
class _Run:
    """The current run of consecutive failures."""

    count: int = 0
    first: float = 0.0


@dataclass
class CircuitBreaker:
    name: str
    config: BreakerConfig
    clock: Callable[[], float] = time.monotonic
    on_change: Callable[[Transition], None] = lambda _t: None
    _state: BreakerState = BreakerState.CLOSED
    _opened_at: float = 0.0
    _trial_in_flight: bool = False
    _run: _Run = field(default_factory=_Run)
    _history: list[Transition] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.config.enabled:
            self._state = BreakerState.DISABLED

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def _move(self, to: BreakerState, reason: str) -> None:
        t = Transition(self.clock(), to, reason)
        self._state = to
        self._history = [*self._history[-49:], t]
        self.on_change(t)

    def _maybe_half_open(self) -> None:
        if (self._state is BreakerState.OPEN
                and self.clock() - self._opened_at >= self.config.cooldown):
            self._move(BreakerState.HALF_OPEN, f"cool-down of {self.config.cooldown:g}s over")

    def allow(self) -> bool:
        """Whether a call may go through now. In half-open, only one trial at a time."""
        with self._lock:
            self._maybe_half_open()
            if self._state in (BreakerState.CLOSED, BreakerState.DISABLED):
                return True
            if self._state is BreakerState.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._run = _Run()
            self._trial_in_flight = False
            if self._state in (BreakerState.HALF_OPEN, BreakerState.OPEN):
                self._move(BreakerState.CLOSED, "trial call succeeded")

    def failure(self, reason: str) -> None:
        with self._lock:
            if self._state is BreakerState.DISABLED:
                return
            now = self.clock()
            if self._state is BreakerState.HALF_OPEN:
                self._trial_in_flight = False
                self._opened_at = now
                self._move(BreakerState.OPEN, f"trial call failed: {reason}")
                return
            if self._run.count == 0 or now - self._run.first > self.config.window:
                self._run = _Run(0, now)  # a new run: older failures are out of the window
            self._run.count += 1
            if self._state is BreakerState.CLOSED and \
                    self._run.count >= self.config.failure_threshold:
                self._opened_at = now
                self._move(BreakerState.OPEN, f"{self._run.count} consecutive failures "
                                              f"within {self.config.window:g}s: {reason}")

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            self._maybe_half_open()
            return {
                "name": self.name,
                "state": self._state.value,
                "consecutive_failures": self._run.count,
                "config": self.config.model_dump(),
                "transitions": [{"at": t.at, "to": t.to.value, "reason": t.reason}
                                for t in self._history],
            }

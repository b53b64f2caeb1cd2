"""The OMS circuit breaker's state machine, on a fake clock."""

from __future__ import annotations

from orderservice.breaker import BreakerState, CircuitBreaker
from orderservice.config import BreakerConfig


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **cfg: object) -> CircuitBreaker:
    return CircuitBreaker("pg", BreakerConfig.model_validate(
        {"failure_threshold": 3, "window": 10, "cooldown": 2, **cfg}), clock=clock)


def test_opens_after_consecutive_failures_then_half_opens_and_closes() -> None:
    clock = Clock()
    b = breaker(clock)
    b.failure("timeout")
    b.failure("timeout")
    assert b.state is BreakerState.CLOSED and b.allow()
    b.failure("timeout")
    assert b.state is BreakerState.OPEN and not b.allow()
    clock.now += 1.9
    assert not b.allow()
    clock.now += 0.2
    assert b.allow()  # the one trial call
    assert b.state is BreakerState.HALF_OPEN and not b.allow()
    b.success()
    assert b.state is BreakerState.CLOSED and b.allow()
    assert [t["to"] for t in b.snapshot()["transitions"]] == ["open", "half-open", "closed"]  # type: ignore[index]


def test_failed_trial_reopens_for_another_cooldown() -> None:
    clock = Clock()
    b = breaker(clock, failure_threshold=1)
    b.failure("x")
    clock.now += 2
    assert b.allow()
    b.failure("still down")
    assert b.state is BreakerState.OPEN and not b.allow()
    clock.now += 2
    assert b.allow()


def test_a_success_or_the_window_resets_the_run() -> None:
    clock = Clock()
    b = breaker(clock)
    b.failure("x")
    b.failure("x")
    b.success()
    b.failure("x")
    b.failure("x")
    assert b.state is BreakerState.CLOSED
    clock.now += 11  # the earlier failures fall out of the window
    b.failure("x")
    assert b.state is BreakerState.CLOSED


def test_disabled_breaker_never_opens() -> None:
    b = breaker(Clock(), enabled=False)
    for _ in range(10):
        b.failure("x")
    assert b.state is BreakerState.DISABLED and b.allow()

from drillrunner.engine.history import Op, OpStatus
from drillrunner.engine.recovery import lasting_success, loss, recovery

OK, FAIL, UNK = OpStatus.OK, OpStatus.FAIL, OpStatus.UNKNOWN


def ops(*spec: tuple[float, float, OpStatus]) -> list[Op]:
    return [Op("w", i + 1, a, b, s) for i, (a, b, s) in enumerate(spec)]


def test_rto_runs_from_the_first_failed_op_to_the_lasting_success() -> None:
    h = ops((0.0, 0.01, OK), (1.0, 1.01, OK), (1.1, 1.6, UNK), (1.6, 2.1, FAIL),
            (2.2, 2.25, OK), (2.3, 2.31, OK))
    r = recovery(h, t_fault=1.05)
    assert r.recovered and r.outage_observed
    assert r.outage_start == 1.1 and r.recovered_at == 2.25
    assert abs(r.rto_seconds - (2.25 - 1.1)) < 1e-9  # type: ignore[operator]
    # start: between the fault (1.05) and the first failure (1.1); end: between the last
    # failure being sent (1.6) and the answer (2.25): the wider gap bounds the error
    assert abs(r.rto_error_seconds - 0.65) < 1e-9  # type: ignore[operator]
    assert r.failed_ops == 1 and r.unknown_ops == 1
    assert abs(r.fault_to_recovery_seconds - 1.2) < 1e-9  # type: ignore[operator]


def test_a_stall_before_the_named_fault_counts_as_unavailability() -> None:
    """Writes stall after the first fault (a paused WAL stream) long before the second
    (the primary killed): the RTO covers the stall, not just the time since the kill."""
    h = ops((0.0, 0.01, OK), (0.5, 1.5, UNK), (1.5, 2.5, UNK), (2.5, 3.5, UNK),
            (3.5, 3.6, FAIL), (3.7, 3.71, OK), (3.8, 3.81, OK))
    r = recovery(h, t_fault=0.4)
    assert abs(r.rto_seconds - (3.71 - 0.5)) < 1e-9  # type: ignore[operator]


def test_an_op_in_flight_at_the_fault_starts_the_outage_at_the_fault() -> None:
    r = recovery(ops((0.0, 0.01, OK), (0.99, 1.5, UNK), (1.5, 2.0, OK)), t_fault=1.0)
    assert r.outage_start == 1.0 and abs(r.rto_seconds - 1.0) < 1e-9  # type: ignore[operator]


def test_a_success_between_failures_is_not_lasting() -> None:
    h = ops((1.0, 1.1, FAIL), (1.2, 1.3, OK), (1.4, 1.5, FAIL), (1.6, 1.7, OK))
    r = recovery(h, t_fault=0.9)
    assert r.recovered_at == 1.7


def test_a_single_success_that_does_not_last_is_no_recovery() -> None:
    h = ops((1.0, 1.1, FAIL), (1.2, 1.3, OK))
    r = recovery(h, t_fault=0.9, stable=1.0)
    assert r.outage_observed and not r.recovered and r.rto_seconds is None
    assert r.rto_exceeds_seconds is not None and abs(r.rto_exceeds_seconds - 0.3) < 1e-9
    assert recovery(h + ops((2.4, 2.5, OK))[:0], t_fault=0.9, stable=0.0).recovered


def test_never_recovered_reports_a_lower_bound() -> None:
    r = recovery(ops((1.0, 1.1, OK), (2.0, 2.5, FAIL), (2.6, 3.5, UNK)), t_fault=1.5)
    assert not r.recovered and r.rto_seconds is None
    assert r.rto_exceeds_seconds == 1.5  # from the first failure (2.0) to the last seen (3.5)


def test_no_operation_after_the_fault_is_no_recovery_and_no_rto_of_zero() -> None:
    r = recovery(ops((0.0, 0.1, OK), (0.2, 0.3, OK)), t_fault=1.0, stable=1.0)
    assert r.ops_after_fault == 0 and not r.recovered and r.rto_seconds is None


def test_no_failure_means_no_observed_outage_never_an_rto_of_zero() -> None:
    r = recovery(ops((1.0, 1.1, OK), (1.2, 1.3, OK), (1.4, 1.9, OK)), t_fault=1.0)
    assert not r.outage_observed and r.recovered
    assert r.rto_seconds is None and r.rto_error_seconds is None


def test_lasting_success_needs_count_and_duration() -> None:
    h = ops((0.0, 0.1, FAIL), (0.2, 0.3, OK), (0.4, 0.5, OK), (0.6, 0.7, OK))
    assert lasting_success(h, 0.0, 3, 0.35)
    assert not lasting_success(h, 0.0, 4, 0.0)
    assert not lasting_success(h, 0.0, 3, 0.5)


def test_lasting_success_and_recovery_agree() -> None:
    """The runner stops waiting on lasting_success; recovery() must then see the same."""
    h = ops((0.0, 0.1, FAIL), *((0.2 + i * 0.1, 0.25 + i * 0.1, OK) for i in range(11)))
    assert lasting_success(h, 0.0, 3, 1.0)
    assert recovery(h, t_fault=0.0, stable=1.0, min_ops=3).recovered


def test_loss_counts_acknowledged_missing_and_their_span() -> None:
    h = ops((0, 1, OK), (1, 2, OK), (2, 3, OK), (3, 4, FAIL), (4, 5, UNK))
    r = loss(h, present={1, 4})
    assert r.acknowledged == 3
    assert r.lost == [2, 3]
    assert r.span_seconds == 1.0
    assert r.failed_but_present == 1


def test_the_error_bar_holds_when_a_stall_times_out_just_after_the_resume() -> None:
    """The service came back at 3.0, but the commit sent at 2.2 answered only after its 1 s
    deadline (3.2): the client reconnected and succeeded at 3.3. The measured RTO (from
    1.0) overstates the outage, and the error bar must still reach the truth (2.0)."""
    h = ops((0.0, 0.01, OK), (1.0, 2.0, UNK), (2.0, 2.2, UNK), (2.2, 3.2, UNK),
            (3.2, 3.3, OK), (3.4, 3.41, OK))
    r = recovery(h, t_fault=1.0)
    true_outage = 2.0
    assert r.rto_seconds is not None and r.rto_error_seconds is not None
    assert abs(r.rto_seconds - true_outage) <= r.rto_error_seconds


def test_the_start_bracket_uses_when_the_last_success_was_sent() -> None:
    """A reply produced before the freeze but read after it: the success completed after
    the fault, yet the outage may have begun as soon as it was sent."""
    h = ops((0.95, 1.05, OK), (1.06, 1.07, FAIL), (1.08, 1.09, OK), (1.1, 1.11, OK))
    r = recovery(h, t_fault=0.9)
    # the outage may have begun at 0.95 (when that success was sent), not only at 1.05
    assert r.rto_error_seconds is not None and abs(r.rto_error_seconds - 0.11) < 1e-9

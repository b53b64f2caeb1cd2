from drillrunner.engine.history import Op, OpStatus
from drillrunner.engine.recovery import lasting_success, loss, recovery

OK, FAIL, UNK = OpStatus.OK, OpStatus.FAIL, OpStatus.UNKNOWN


def ops(*spec: tuple[float, float, OpStatus]) -> list[Op]:
    return [Op("w", i + 1, a, b, s) for i, (a, b, s) in enumerate(spec)]


def test_rto_is_first_lasting_success_after_fault_with_error_bar() -> None:
    h = ops((0.0, 0.01, OK), (1.0, 1.01, OK), (1.1, 1.6, UNK), (1.6, 2.1, FAIL),
            (2.2, 2.25, OK), (2.3, 2.31, OK))
    r = recovery(h, t_fault=1.05)
    assert r.recovered and r.outage_observed
    assert r.rto_seconds == 2.25 - 1.05
    assert r.rto_error_seconds == 2.25 - 2.1
    assert r.failed_ops == 2


def test_a_success_between_failures_is_not_lasting() -> None:
    h = ops((1.0, 1.1, FAIL), (1.2, 1.3, OK), (1.4, 1.5, FAIL), (1.6, 1.7, OK))
    r = recovery(h, t_fault=0.9)
    assert r.first_lasting_success == 1.7


def test_never_recovered() -> None:
    r = recovery(ops((1.0, 1.1, OK), (2.0, 2.5, FAIL)), t_fault=1.5)
    assert not r.recovered and r.rto_seconds is None


def test_no_failure_means_no_observed_outage_with_gap_as_error() -> None:
    r = recovery(ops((1.0, 1.1, OK), (1.2, 1.3, OK), (1.4, 1.9, OK)), t_fault=1.0)
    assert r.rto_seconds == 0.0 and not r.outage_observed
    assert r.rto_error_seconds is not None and abs(r.rto_error_seconds - 0.6) < 1e-9


def test_lasting_success_needs_count_and_duration() -> None:
    h = ops((0.0, 0.1, FAIL), (0.2, 0.3, OK), (0.4, 0.5, OK), (0.6, 0.7, OK))
    assert lasting_success(h, 0.0, 3, 0.4)
    assert not lasting_success(h, 0.0, 4, 0.0)
    assert not lasting_success(h, 0.0, 3, 1.0)


def test_loss_counts_acknowledged_missing_and_their_span() -> None:
    h = ops((0, 1, OK), (1, 2, OK), (2, 3, OK), (3, 4, FAIL), (4, 5, UNK))
    r = loss(h, present={1, 4})
    assert r.acknowledged == 3
    assert r.lost == [2, 3]
    assert r.span_seconds == 1.0
    assert r.failed_but_present == 1

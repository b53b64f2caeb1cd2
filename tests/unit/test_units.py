import pytest

from drillrunner.core.units import parse_duration, parse_rate


@pytest.mark.parametrize(("text", "seconds"), [("2s", 2.0), ("500ms", 0.5), (3, 3.0),
                                               ("1.5m", 90.0), ("1h", 3600.0)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["fast", "-1s", True, None, "2 weeks"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_rates() -> None:
    assert parse_rate("20/s") == 20.0
    assert parse_rate("600/m") == 10.0
    with pytest.raises(ValueError):
        parse_rate("0/s")

"""A missing server fails the test, in CI or not; only DRILL_TEST_SKIP_SERVERS=1 skips."""

from __future__ import annotations

import pytest

from tests.support import SKIP_SERVERS_VAR, need_binaries, need_module

ABSENT = "/nonexistent/drill-test-server"


@pytest.mark.parametrize("ci", ["", "true"])
def test_a_missing_binary_fails_whether_or_not_in_ci(monkeypatch: pytest.MonkeyPatch,
                                                     ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.delenv(SKIP_SERVERS_VAR, raising=False)
    with pytest.raises(pytest.fail.Exception, match=SKIP_SERVERS_VAR):
        need_binaries(ABSENT, install="nothing")


def test_a_missing_module_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(SKIP_SERVERS_VAR, raising=False)
    with pytest.raises(pytest.fail.Exception, match="no_such_module_xyz"):
        need_module("no_such_module_xyz", install="nothing")


@pytest.mark.parametrize("value", ["", "0", "true"])
def test_only_the_exact_opt_out_skips(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(SKIP_SERVERS_VAR, value)
    with pytest.raises(pytest.fail.Exception):
        need_binaries(ABSENT, install="nothing")


def test_the_opt_out_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SKIP_SERVERS_VAR, "1")
    with pytest.raises(pytest.skip.Exception, match=SKIP_SERVERS_VAR):
        need_binaries(ABSENT, install="nothing")
    with pytest.raises(pytest.skip.Exception):
        need_module("no_such_module_xyz", install="nothing")


def test_present_ones_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SKIP_SERVERS_VAR, raising=False)
    need_binaries("sh", install="nothing")
    assert need_module("json", install="nothing") is not None

"""Command-line misuse: one clear line on stderr, exit 2 (usage) or 3 (the stack), never a
traceback. No server is started: the stack here is a state folder with nothing running."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drillrunner.cli import main
from drillrunner.stack.settings import StackSettings, save_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    folder.mkdir()
    monkeypatch.setenv("DRILL_STATE_DIR", str(folder))
    monkeypatch.chdir(ROOT)
    return folder


@pytest.fixture
def down_stack(state: Path) -> Path:
    """A stack that was set up (settings saved) but whose members are all down."""
    save_settings(state, StackSettings(port_base=26500))
    return state


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str], codes: set[int]) -> str:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code in codes, (code, captured)
    assert "Traceback" not in captured.err + captured.out
    assert err and len(err.splitlines()) == 1, err
    return err


def test_unknown_scenario(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line(capsys, ["run", "no-such-scenario"], {2})
    assert "unknown scenario or drill 'no-such-scenario'" in err


def test_unknown_target(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line(capsys, ["run", "redis-sentinel-failover", "--target", "nowhere"], {2})
    assert "unknown target 'nowhere'" in err


def test_out_under_a_file(down_stack: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    err = one_line(capsys, ["run", "redis-sentinel-failover", "--out", str(a_file / "x")], {2})
    assert err.startswith(f"drill: --out {a_file / 'x'}: cannot write there")
    assert not (down_stack / "drill.lock").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permissions")
def test_out_unwritable(down_stack: Path, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    err = one_line(capsys, ["run", "redis-sentinel-failover", "--out", str(ro)], {2})
    assert "cannot write there" in err


def test_stack_down(down_stack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line(capsys, ["run", "redis-sentinel-failover", "--out", str(tmp_path)], {3})
    assert "not running" in err and "drill stack up" in err
    assert not (down_stack / "drill.lock").exists()  # the lock is released


def test_stack_never_set_up(state: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line(capsys, ["run", "redis-sentinel-failover", "--out", str(tmp_path)], {3})
    assert "drill stack up" in err


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_stack_status_with_no_stack(state: Path, capsys: pytest.CaptureFixture[str],
                                    fmt: str) -> None:
    err = one_line(capsys, ["stack", "status", "--format", fmt], {2, 3})
    assert "drill stack up" in err


def test_report_of_a_non_bundle(state: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line(capsys, ["report", str(tmp_path)], {2})
    assert "not an evidence bundle" in err


def test_claims_of_a_non_bundle(state: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line(capsys, ["claims", str(tmp_path)], {2})
    assert "not an evidence bundle" in err


def test_verify_of_a_missing_folder(state: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line(capsys, ["verify", str(tmp_path / "missing")], {2})
    assert "no such folder" in err


def test_validate_of_a_missing_file(state: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line(capsys, ["validate", str(tmp_path / "missing.yaml")], {2})
    assert "no such file or folder" in err


def test_unknown_setting(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_line(capsys, ["stack", "up", "--set", "nope=1"], {2})
    assert "unknown setting 'nope'" in err


def test_recover_with_a_garbled_lock(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (state / "drill.lock").write_text("{not json")
    capsys.readouterr()
    code = main(["recover"])
    captured = capsys.readouterr()
    assert code in (0, 2, 3) and "Traceback" not in captured.err + captured.out

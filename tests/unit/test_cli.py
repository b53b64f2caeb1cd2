import json
import subprocess
import sys
from pathlib import Path

import pytest

from drillrunner.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_scenarios_and_drills_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["validate"]) == 0


def test_invalid_file_exit_2_with_file_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: drill/v1\nkind: Scenario\nmetadata: {name: X}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3:" in err and "Traceback" not in err


def test_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "Scenario" in schema["$defs"]


def test_usage_errors_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path))
    assert main(["run", "no-such-scenario"]) == 2
    assert main(["run", "redis-sentinel-failover", "--target", "moon"]) == 2
    assert main(["bogus"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_run_without_stack_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DRILL_STATE_DIR", str(tmp_path))
    assert main(["run", "redis-sentinel-failover"]) == 3
    assert "drill stack up" in capsys.readouterr().err


def test_help_does_not_import_heavy_clients() -> None:
    code = ("import sys; from drillrunner.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "heavy = [m for m in ('psycopg', 'redis', 'feast', 'kubernetes', 'confluent_kafka')"
            " if m in sys.modules]\nprint(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"

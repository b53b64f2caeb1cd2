"""`drill validate` on mutated valid files: exit 0 or 2 within seconds, never a traceback.
(bench/fuzz_validate.py runs the same mutations 10,000+ times.)"""

from __future__ import annotations

import contextlib
import io
import random
import tempfile
import time
from pathlib import Path
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drillrunner.cli import catalog_cmds, main
from drillrunner.services.registry import full_catalog
from tests.fuzz_inputs import SEEDS, mutated

MAX_SECONDS = 5.0


CATALOG = full_catalog()


def validate(path: Path) -> tuple[int, str, float]:
    err, out = io.StringIO(), io.StringIO()
    started = time.monotonic()
    # The catalog is the same for every case: load it once (it is not under test here).
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), \
            mock.patch.object(catalog_cmds, "_catalog", lambda: CATALOG):
        code = main(["validate", str(path)])
    return code, err.getvalue() + out.getvalue(), time.monotonic() - started


def test_seeds_are_valid() -> None:
    assert len(SEEDS) > 10
    for path in SEEDS:
        code, text, _ = validate(path)
        assert code == 0, text


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.randoms(use_true_random=False))
def test_mutated_files_never_crash_validate(rng: random.Random) -> None:
    data = mutated(rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzzed.yaml"
        path.write_bytes(data)
        code, text, seconds = validate(path)  # an uncaught exception fails the test here
    assert code in (0, 2), text
    assert "Traceback" not in text
    assert seconds < MAX_SECONDS
    if code == 2:
        assert text.strip(), "an invalid file must say why"
        for line in text.strip().splitlines():
            assert line.startswith(str(path) + ":"), line  # file:line:col: message


# -- crashes and hangs the fuzzer found, kept as regressions --------------------------------
def _bomb(levels: int, fan: int) -> str:
    lines = [f"a0: &a0 [{', '.join(['x'] * fan)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


REGRESSIONS = {
    # 99 aliases (under the alias limit) that expand to 9**11 nodes: 12 GB, then OOM-killed.
    "alias-bomb": "apiVersion: drill/v1\nkind: Scenario\n" + _bomb(12, 9),
    # PyYAML's scanner is quadratic in flow nesting: 5,000 brackets took 19 s.
    "deep-flow": "apiVersion: drill/v1\nkind: Scenario\nx: " + "[" * 5000 + "]" * 5000 + "\n",
    # ...and in indentation.
    "deep-indent": "".join(" " * i + "k:\n" for i in range(0, 3000, 1)) + " " * 3000 + "v: 1\n",
    # A drill naming a scenario longer than a file name may be: OSError ENAMETOOLONG.
    "long-name": "apiVersion: drill/v1\nkind: Drill\nmetadata: {name: a, title: b}\n"
                 "scenarios: [" + "x" * 400 + ", \"a\\0b\"]\n",
}


def test_regressions(tmp_path: Path) -> None:
    for name, text in REGRESSIONS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        code, out, seconds = validate(path)
        assert code == 2 and "Traceback" not in out, (name, out)
        assert out.startswith(f"{path}:"), (name, out)
        assert seconds < 3, (name, seconds)

"""The detection matrix: every stack setting that weakens the local stack is caught by the
drills detection-matrix.yaml names, and they do catch it.

The file is the single source: the README's "Detection matrix" table must equal what
`render_table` makes of it (`python -m tests.integration.test_detection_matrix` prints it),
and every setting of the stack must be in it. The live rows bring the whole stack up once
on their own ports and state folder, then for each row: `drill stack up --set`, `drill run`
the row's scenarios, check each outcome, failing check and evidence, `drill stack up --reset`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from drillrunner.cli import main
from drillrunner.evidence.journal import read
from drillrunner.model.library import Library
from drillrunner.model.loader import load
from drillrunner.model.scenario import Scenario
from drillrunner.stack.settings import StackSettings
from tests.integration.conftest import ROOT, local_stack

pytestmark = pytest.mark.integration

MATRIX_FILE = Path(__file__).with_name("detection-matrix.yaml")
README_HEADING = "### Detection matrix"
PORT_BASE = 17800  # its own stack: the suite's drill_stack (17100) keeps its settings


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expect(_Model):
    """One fact the catching event must show: the value at `path` compared one way."""

    path: list[str] = Field(min_length=1)
    above: float | None = None
    equals: bool | int | str | None = None
    contains: str | None = None

    @model_validator(mode="after")
    def _one_comparison(self) -> Expect:
        given = [k for k in ("above", "equals", "contains") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of above, equals, contains (got {given})")
        return self

    def value(self, event: dict[str, Any]) -> Any:
        node: Any = event
        for key in self.path:
            node = node.get(key) if isinstance(node, dict) else None
        return node

    def holds(self, event: dict[str, Any]) -> bool:
        got = self.value(event)
        if self.above is not None:
            return isinstance(got, int | float) and not isinstance(got, bool) \
                and got > self.above
        if self.contains is not None:
            return isinstance(got, list | str) and self.contains in got
        return type(got) is type(self.equals) and got == self.equals

    def describe(self) -> str:
        name = ".".join(self.path[1:] if len(self.path) > 1 else self.path)
        if self.above is not None:
            return f"{name} > {self.above:g}"
        if self.contains is not None:
            return f'{name} includes "{self.contains}"'
        shown = str(self.equals).lower() if isinstance(self.equals, bool) else self.equals
        return f"{name} = {shown}"


class Catch(_Model):
    """`scenario` ends `outcome` because `check` failed (or steady-state `probe` did not
    hold, for baseline-not-met), and its event shows every `expect`."""

    scenario: str
    outcome: Literal["failed", "baseline-not-met"] = "failed"
    check: str | None = None
    probe: str | None = None
    expect: list[Expect] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_or_probe(self) -> Catch:
        if (self.outcome == "failed") != (self.check is not None and self.probe is None):
            raise ValueError("outcome failed names a check; baseline-not-met names a probe")
        return self

    def how(self) -> str:
        if self.check is not None:
            return f"{self.outcome} (`{self.check}` FAIL)"
        return f"{self.outcome} (steady-state probe `{self.probe}` does not hold)"


class Row(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    setting: str = Field(alias="set", pattern=r"^[a-z_]+\.[a-z_]+=\S+$")
    weakens: str = Field(min_length=1)
    caught_by: list[Catch] = Field(default_factory=list)
    not_caught: str | None = None

    @model_validator(mode="after")
    def _caught_or_why_not(self) -> Row:
        if bool(self.caught_by) == (self.not_caught is not None):
            raise ValueError(f"{self.setting}: give caught_by or not_caught, not both")
        return self

    @property
    def key(self) -> str:
        return self.setting.partition("=")[0]

    def scenarios(self) -> list[str]:
        return list(dict.fromkeys(c.scenario for c in self.caught_by))


class Matrix(_Model):
    rows: list[Row] = Field(min_length=1)
    not_weakening: dict[str, str]


def load_matrix() -> Matrix:
    return Matrix.model_validate(yaml.safe_load(MATRIX_FILE.read_text()))


def render_table(matrix: Matrix) -> str:
    """The README's table: one line per catch, and one per setting no drill catches."""
    lines = ["| `--set` | what it weakens | scenario | how it is caught | evidence |",
             "|---|---|---|---|---|"]
    for row in matrix.rows:
        head = f"| `{row.setting}` | {row.weakens} |"
        if row.not_caught is not None:
            lines.append(f"{head} none | **not caught**: {' '.join(row.not_caught.split())} | |")
        for c in row.caught_by:
            evidence = "; ".join(f"`{e.describe()}`" for e in c.expect)
            lines.append(f"{head} `{c.scenario}` | {c.how()} | {evidence} |")
            head = "| | |"  # the setting once, its catches below it
    return "\n".join(lines)


def readme_table() -> str:
    text = (ROOT / "README.md").read_text()
    assert README_HEADING in text, f"README.md has no {README_HEADING!r} section"
    section = re.split(r"\n#{1,3} ", text.split(README_HEADING, 1)[1], maxsplit=1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def setting_keys(model: type[BaseModel] = StackSettings, prefix: str = "") -> set[str]:
    """Every leaf setting of the stack, as `--set` spells it."""
    keys = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            keys |= setting_keys(kind, f"{prefix}{name}.")
        else:
            keys.add(prefix + name)
    return keys


MATRIX = load_matrix()
CAUGHT = [row for row in MATRIX.rows if row.caught_by]


def test_the_readme_table_is_the_matrix() -> None:
    assert readme_table() == render_table(MATRIX), (
        "README.md's Detection matrix table differs from tests/integration/"
        "detection-matrix.yaml; paste the output of "
        "`python -m tests.integration.test_detection_matrix`")


def test_every_stack_setting_is_in_the_matrix() -> None:
    listed = [row.key for row in MATRIX.rows] + list(MATRIX.not_weakening)
    assert len(listed) == len(set(listed)), "a setting is listed twice"
    assert set(listed) == setting_keys()
    default = StackSettings()
    for row in MATRIX.rows:  # each value is valid and differs from the default
        assert default.with_overrides([row.setting]) != default, row.setting


def test_each_catch_names_what_its_scenario_runs() -> None:
    library = Library(ROOT)
    for row in CAUGHT:
        for c in row.caught_by:
            doc, problems = load(library.find(c.scenario))
            assert doc is not None and isinstance(doc.model, Scenario), problems
            checks = {step.check for step in doc.model.verify}
            probes = {step.probe for step in doc.model.steady_state}
            assert c.check in checks if c.check else c.probe in probes, (row.setting, c)


def _journal(outcome: str, verdict: str, lost: int) -> list[dict[str, Any]]:
    return [{"event": "check", "scenario": "s", "check": "no_acknowledged_write_lost",
             "verdict": verdict, "summary": "", "evidence": {},
             "measurements": {"lost_acknowledged_writes": lost}},
            {"event": "scenario-end", "scenario": "s", "outcome": outcome, "reason": ""}]


@pytest.mark.parametrize(("outcome", "verdict", "lost"), [
    ("passed", "PASS", 0),      # the drill did not catch it
    ("failed", "PASS", 0),      # it failed, but not because of the expected check
    ("failed", "FAIL", 0),      # the check failed without the evidence of the breakage
    ("inconclusive", "FAIL", 3),
])
def test_a_row_fails_unless_its_check_caught_the_breakage(outcome: str, verdict: str,
                                                          lost: int) -> None:
    catch = Catch(scenario="s", check="no_acknowledged_write_lost",
                  expect=[Expect(path=["measurements", "lost_acknowledged_writes"], above=0)])
    with pytest.raises(AssertionError):
        assert_caught(_journal(outcome, verdict, lost), catch)
    assert_caught(_journal("failed", "FAIL", 3), catch)


@pytest.fixture(scope="module")
def matrix_stack() -> Iterator[Path]:
    with local_stack(PORT_BASE, "drill-matrix-") as state:
        yield state


def _events(out: Path) -> list[dict[str, Any]]:
    bundles = [p for p in out.iterdir() if (p / "journal.jsonl").is_file()]
    assert len(bundles) == 1, f"expected one evidence bundle in {out}, found {bundles}"
    return list(read(bundles[0] / "journal.jsonl"))


def assert_caught(events: list[dict[str, Any]], c: Catch) -> None:
    mine = [e for e in events if e.get("scenario") == c.scenario]
    end = next((e for e in mine if e["event"] == "scenario-end"), None)
    assert end is not None, f"{c.scenario} did not end"
    assert end["outcome"] == c.outcome, f"{c.scenario}: {end['outcome']}: {end.get('reason')}"
    if c.check is not None:
        found = [e for e in mine if e["event"] == "check" and e["check"] == c.check]
        assert len(found) == 1, f"{c.scenario}: {len(found)} {c.check} check events"
        event = found[0]
        assert event["verdict"] == "FAIL", f"{c.scenario}: {c.check}: {event['summary']}"
    else:
        probes = [e for e in mine if e["event"] == "steady-state" and e["probe"] == c.probe]
        assert probes and not probes[-1]["holds"], f"{c.scenario}: {c.probe} held"
        assert not any(e["event"] == "fault-invoke" for e in mine), "a fault was injected"
        event = probes[-1]
    for expect in c.expect:
        assert expect.holds(event), (f"{c.scenario}: {c.check or c.probe}: expected "
                                     f"{expect.describe()}, got {expect.value(event)!r}")


@pytest.mark.parametrize("row", CAUGHT, ids=[row.setting for row in CAUGHT])
def test_the_drills_catch_the_setting(matrix_stack: Path, tmp_path: Path, row: Row) -> None:
    assert main(["stack", "up", "--set", row.setting]) == 0
    try:
        code = main(["run", *row.scenarios(), "--no-audit", "--out", str(tmp_path)])
    finally:
        assert main(["stack", "up", "--reset"]) == 0
    events = _events(tmp_path)
    for catch in row.caught_by:
        assert_caught(events, catch)
    assert code == 1, f"drill run exited {code}, not 1 (failed)"


if __name__ == "__main__":
    print(render_table(MATRIX))

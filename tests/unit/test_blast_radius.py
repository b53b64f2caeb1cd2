"""A scenario may not disrupt more members at once than its blast_radius (default 1)."""

from pathlib import Path

import pytest

from drillrunner.core.actions import ALL, ActionKind, Catalog, fault
from drillrunner.engine import checks
from drillrunner.model.loader import check_actions, load
from drillrunner.services.registry import full_catalog
from tests.unit import fake_actions

CATALOG = Catalog.from_modules([checks, fake_actions])

SCENARIO = """\
apiVersion: drill/v1
kind: Scenario
metadata: {{name: fake, title: Fake outage}}
{radius}
steady_state:
  - probe: fake.ready
faults:
{faults}
verify:
  - check: fake.passes
"""


def problems(tmp_path: Path, faults: str, radius: str = "") -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(faults=faults, radius=radius))
    doc, errors = load(path)
    assert doc is not None, errors
    return [str(p) for p in check_actions(doc, CATALOG)]


def test_one_member_is_the_default(tmp_path: Path) -> None:
    assert problems(tmp_path, "  - fake.break_it: {}") == []
    out = problems(tmp_path, "  - fake.break_it: {}\n  - fake.break_it: {}")
    assert len(out) == 1
    assert out[0].startswith(f"{tmp_path / 's.yaml'}:9:")
    assert "disrupt 2 members at once, more than blast_radius 1 (the default)" in out[0]


def test_faults_add_up_against_an_explicit_radius(tmp_path: Path) -> None:
    assert problems(tmp_path, "  - fake.break_two: {}", "blast_radius: 2") == []
    out = problems(tmp_path, "  - fake.break_two: {}\n  - fake.break_it: {}", "blast_radius: 2")
    assert len(out) == 1 and "faults[1].fake.break_it" in out[0] and "3 members" in out[0]
    assert "(the default)" not in out[0]


def test_a_whole_tier_needs_blast_radius_all(tmp_path: Path) -> None:
    out = problems(tmp_path, "  - fake.break_tier: {}", "blast_radius: 5")
    assert len(out) == 1 and "a whole tier" in out[0]
    assert problems(tmp_path, "  - fake.break_tier: {}", "blast_radius: all") == []


def test_actions_in_faults_disrupt_nothing(tmp_path: Path) -> None:
    assert problems(tmp_path, "  - fake.break_it: {}\n  - fake.note: {text: hi}") == []


@pytest.mark.parametrize("bad", ["0", "-1", "some", "[1]"])
def test_blast_radius_must_be_a_count_or_all(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(faults="  - fake.break_it: {}", radius=f"blast_radius: {bad}"))
    doc, errors = load(path)
    assert doc is None and errors and all(":4:" in str(e) for e in errors)


def test_fault_declaration_is_checked() -> None:
    with pytest.raises(ValueError, match="disrupts"):
        fault("x.y", undo="x.z", disrupts=-1)
    with pytest.raises(ValueError, match="disrupts"):
        fault("x.y", undo="x.z", disrupts="most")  # type: ignore[arg-type]


def test_shipped_declarations() -> None:
    catalog = full_catalog()
    faults = {s.name: s.disrupts for s in catalog if s.kind is ActionKind.FAULT}
    for tier in ("redis.kill_all", "redis.destroy_tier", "oms.redis_unreachable"):
        assert faults[tier] == ALL
    assert faults["redis.kill_primary"] == 1
    assert all(s.disrupts == 0 for s in catalog if s.kind is not ActionKind.FAULT)

from pathlib import Path

from drillrunner.core.actions import Catalog
from drillrunner.engine import checks
from drillrunner.model.loader import check_actions, load
from tests.unit import fake_actions

CATALOG = Catalog.from_modules([checks, fake_actions])

GOOD = """\
apiVersion: drill/v1
kind: Scenario
metadata:
  name: fake
  title: A fake outage
  claims: [C15-dr-drills]
steady_state:
  - probe: fake.ready
workload:
  - fake.writes: {rate: 10/s}
faults:
  - fake.break_it: {outage: 1s}
    after: 2s
verify:
  - check: recovered_within_slo
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    doc, found = load(path)
    if doc is not None:
        found += check_actions(doc, CATALOG)
    return [str(p).replace(str(path), "s.yaml") for p in found]


def test_good_file_has_no_problems(tmp_path: Path) -> None:
    assert problems(tmp_path, GOOD) == []


def test_schema_errors_name_line_column_and_field(tmp_path: Path) -> None:
    text = GOOD.replace("  title: A fake outage\n", "  title: A fake outage\n  owner: me\n")
    text = text.replace("title: A fake outage", "title: ''")
    found = problems(tmp_path, text)
    assert "s.yaml:6:3: metadata.owner: Extra inputs are not permitted" in found
    assert any(p.startswith("s.yaml:5:10: metadata.title") for p in found)
    rate = problems(tmp_path, GOOD.replace("{rate: 10/s}", "{rate: fast}"))
    assert any(p.startswith("s.yaml:10:") and "rate" in p for p in rate)


def test_unknown_action_and_bad_argument_point_at_the_step(tmp_path: Path) -> None:
    text = GOOD.replace("fake.ready", "fake.nope").replace("{outage: 1s}", "{outage: soon}")
    found = problems(tmp_path, text)
    assert any(p.startswith("s.yaml:8:") and "unknown probe 'fake.nope'" in p for p in found)
    assert any(p.startswith("s.yaml:12:") and "outage" in p for p in found)


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("fake.ready", "fake.nope").replace("recovered_within_slo", "nope")
    assert len(problems(tmp_path, text)) == 2


def test_bad_yaml_and_bad_claim_and_two_actions_in_a_step(tmp_path: Path) -> None:
    assert problems(tmp_path, "a: [1,\n")[0].startswith("s.yaml:2:")
    assert "claim 'X1'" in problems(tmp_path, GOOD.replace("C15-dr-drills", "X1"))[0]
    two = GOOD.replace("  - fake.break_it: {outage: 1s}\n",
                       "  - fake.break_it: {outage: 1s}\n    fake.fix: {}\n")
    assert any("exactly one action name" in p for p in problems(tmp_path, two))


def test_alias_bomb_and_binary_are_refused(tmp_path: Path) -> None:
    bomb = "a: &a [x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(20))
    assert "too many YAML aliases" in problems(tmp_path, bomb * 1)[0] or problems(tmp_path, bomb)
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"kind: \xff\xfe")
    doc, found = load(path)
    assert doc is None and "UTF-8" in str(found[0])

"""The audit corpus: realistic manifests, broken and compliant, each line that a rule must
report marked in the file itself.

tests/unit/audit_corpus/<topic>/<case>.yaml; in each file
- a line ending in `# finding: <rule>[, <rule>...]` is where a finding of that rule must
  point (that exact line);
- an optional header line `# ignore: <rule>, <rule>` lists rules whose findings are not
  checked in that file.
The findings of every other rule, as (rule, line), must equal the marked set exactly: a
compliant file has no marks and no findings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drillrunner.audit import all_rules, audit_paths

CORPUS = Path(__file__).parent / "audit_corpus"
FILES = sorted(CORPUS.rglob("*.yaml"))
_MARK = re.compile(r"#\s*finding:\s*([\w\s,-]+?)\s*$")
_IGNORE = re.compile(r"^\s*#\s*ignore:\s*([\w\s,-]+?)\s*$")


def marks(path: Path) -> tuple[set[tuple[str, int]], set[str]]:
    """(rule, line) pairs marked in a corpus file, and the rules it ignores."""
    expected: set[tuple[str, int]] = set()
    ignored: set[str] = set()
    for n, text in enumerate(path.read_text().splitlines(), 1):
        if m := _IGNORE.match(text):
            ignored |= {r.strip() for r in m.group(1).split(",") if r.strip()}
        elif m := _MARK.search(text):
            expected |= {(r.strip(), n) for r in m.group(1).split(",") if r.strip()}
    return expected, ignored


def _show(path: Path, pairs: set[tuple[str, int]]) -> str:
    rel = path.relative_to(CORPUS)
    return "\n".join(f"  {rel}:{line} {rule}" for rule, line in
                     sorted(pairs, key=lambda p: (p[1], p[0]))) or "  (none)"


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_corpus_file(path: Path) -> None:
    expected, ignored = marks(path)
    known = {r.name for r in all_rules()}
    assert {r for r, _ in expected} | ignored <= known, \
        f"{path.name} marks unknown rules: {({r for r, _ in expected} | ignored) - known}"
    _, results = audit_paths([str(path)])
    got = {(f.rule, f.line or 0) for r in results for f in r.findings if f.rule not in ignored}
    if got != expected:
        pytest.fail(f"{path.relative_to(CORPUS)}: findings differ from the marks\n"
                    f"expected (marked) but not found:\n{_show(path, expected - got)}\n"
                    f"found but not marked:\n{_show(path, got - expected)}", pytrace=False)


def test_corpus_is_there() -> None:
    assert len(FILES) >= 10, FILES

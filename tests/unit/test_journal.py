import json
from pathlib import Path

from drillrunner.engine.journal import Journal, read, verify_chain


def test_chain_detects_edits_and_redacts(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    j.append("a", dsn="postgresql://app:hunter2@127.0.0.1/db", note="password=hunter2 x")
    j.append("b", value=1)
    j.close()
    assert "hunter2" not in path.read_text()
    assert verify_chain(path) == []
    lines = path.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["event"] = "edited"
    path.write_text(json.dumps(rec, separators=(",", ":")) + "\n" + lines[1] + "\n")
    assert verify_chain(path)


def test_reopened_journal_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal(path).append("one")
    j = Journal(path)
    j.append("two")
    j.close()
    assert verify_chain(path) == []
    assert [e["seq"] for e in read(path)] == [0, 1]

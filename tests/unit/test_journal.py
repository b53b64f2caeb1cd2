import hashlib
import json
from pathlib import Path

import pytest

from drillrunner.evidence.journal import GENESIS, Journal, final_hash, read, verify_chain


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


def test_seq_counts_every_line_whatever_the_payload(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    j.append("run-start", run_id="r1")
    j.append("op", workload="w", op_seq=41, status="ok")
    j.append("op", workload="w", op_seq=42, status="ok")
    j.close()
    assert [e["seq"] for e in read(path)] == [0, 1, 2]
    assert [e.get("op_seq") for e in read(path)] == [None, 41, 42]


@pytest.mark.parametrize("key", ["seq", "mono", "wall", "prev"])
def test_a_payload_may_not_override_a_reserved_key(tmp_path: Path, key: str) -> None:
    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    j.append("one")
    with pytest.raises(ValueError, match=key):
        j.append("op", **{key: 7})
    j.append("two")
    j.close()
    assert [e["seq"] for e in read(path)] == [0, 1]  # nothing written for the refused event
    assert verify_chain(path) == []


def test_final_hash_is_what_the_next_line_chains_to(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b"")
    assert final_hash(path) == GENESIS
    j = Journal(path)
    j.append("one")
    before = final_hash(path)
    last = path.read_bytes().splitlines()[-1]
    assert before == hashlib.sha256(last).hexdigest()
    j.append("two")
    j.close()
    assert list(read(path))[-1]["prev"] == before
    assert final_hash(path) != before


def test_verify_chain_reports_a_gap_in_seq(tmp_path: Path) -> None:
    """A line renumbered (or written by a payload's own seq) with the chain recomputed."""
    path = tmp_path / "journal.jsonl"
    prev, lines = GENESIS, []
    for seq in (0, 1, 5):
        line = json.dumps({"seq": seq, "event": "e", "prev": prev}).encode()
        lines.append(line)
        prev = hashlib.sha256(line).hexdigest()
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert verify_chain(path) == ["line 3: seq 5, expected 2"]


def test_event_names_are_the_journal_format(tmp_path: Path) -> None:
    """Old journals must still read, replay and render: no event name may change."""
    from drillrunner.evidence.events import Event

    assert {e.value for e in Event} == {
        "run-start", "run-end", "audit-rule", "scenarios-skipped", "scenario-start",
        "scenario-end", "error", "signal-deferred", "timeout-deferred", "delay",
        "steady-state", "steady-state-after", "steady-state-restored", "recovery-probe",
        "workload-start", "workload-stop", "op", "fault-invoke", "fault-return",
        "action-invoke", "action-return", "recovered", "recovery-timeout", "check",
        "undo-intent", "undo-start", "undo-done", "undo-failed", "rollback-start",
        "rollback-done", "rollback-failed", "recover-start", "recover-end"}
    j = Journal(tmp_path / "journal.jsonl")
    j.append(Event.UNDO_DONE, scenario="s")
    j.close()
    line = (tmp_path / "journal.jsonl").read_text()
    assert '"event":"undo-done"' in line and next(read(tmp_path / "journal.jsonl"))[
        "event"] == Event.UNDO_DONE

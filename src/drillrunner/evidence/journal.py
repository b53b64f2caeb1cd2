"""The run's journal: append-only JSON Lines, fsync'd per event, each line hash-chained.

Every line carries `seq` (the line's own counter: 0, 1, 2, ... without gaps) and `prev`, the
SHA-256 of the previous line's bytes, so an edit, a removed or an inserted line breaks the
chain. The hash of the last line (`final_hash`) is what a bundle's signature binds. It is the
single source every report is rendered from.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drillrunner.evidence.redact import redact

GENESIS = "0" * 64
# Written by the journal itself: an event's payload may not override them.
RESERVED = frozenset({"seq", "event", "mono", "wall", "prev"})


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._prev = GENESIS
        self._seq = 0
        if path.exists():  # continue a chain (drill recover appends to the run's journal)
            for line in path.read_bytes().splitlines():
                self._prev = hashlib.sha256(line).hexdigest()
                self._seq += 1
        self._file = open(path, "ab")  # noqa: SIM115 - kept open for the run

    def append(self, event: str, **data: Any) -> dict[str, Any]:
        clash = RESERVED.intersection(data)
        if clash:
            raise ValueError(f"journal event {event!r}: payload keys {sorted(clash)} are "
                             "reserved for the journal's own fields")
        with self._lock:
            record = {
                "seq": self._seq,
                "event": str(event),
                "mono": time.monotonic(),
                "wall": datetime.now(UTC).isoformat(timespec="microseconds"),
                "prev": self._prev,
                **redact(data),
            }
            line = json.dumps(record, separators=(",", ":")).encode()  # redact made it JSON
            self._file.write(line + b"\n")
            self._file.flush()
            os.fsync(self._file.fileno())
            self._prev = hashlib.sha256(line).hexdigest()
            self._seq += 1
            return record

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def final_hash(path: Path) -> str:
    """SHA-256 of the journal's last line (what the next line's `prev` would be); GENESIS
    for an empty journal."""
    last = None
    with open(path, "rb") as f:
        for raw in f:
            last = raw.rstrip(b"\n")
    return GENESIS if last is None else hashlib.sha256(last).hexdigest()


def verify_chain(path: Path) -> list[str]:
    """Problems with the hash chain and the line counter (empty when intact)."""
    problems = []
    prev = GENESIS
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip(b"\n")
            try:
                rec = json.loads(line)
            except ValueError:
                problems.append(f"line {n}: not JSON")
                prev = hashlib.sha256(line).hexdigest()
                continue
            if not isinstance(rec, dict):
                problems.append(f"line {n}: not a JSON object")
            elif rec.get("prev") != prev:
                problems.append(f"line {n}: hash chain broken (edited, inserted or removed line)")
            elif rec.get("seq") != n - 1:
                problems.append(f"line {n}: seq {rec.get('seq')!r}, expected {n - 1}")
            prev = hashlib.sha256(line).hexdigest()
    return problems

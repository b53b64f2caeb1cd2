"""MANIFEST.sha256 over every file of a bundle, and its verification."""

from __future__ import annotations

import hashlib
from pathlib import Path

from drillrunner.engine.journal import verify_chain

NAME = "MANIFEST.sha256"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(bundle: Path) -> list[str]:
    return sorted(str(p.relative_to(bundle)) for p in bundle.rglob("*")
                  if p.is_file() and p.name != NAME)


def write_manifest(bundle: Path) -> Path:
    lines = [f"{_digest(bundle / rel)}  {rel}" for rel in _files(bundle)]
    path = bundle / NAME
    path.write_text("\n".join(lines) + "\n")
    return path


def verify(bundle: Path) -> list[str]:
    """Every change, missing or added file, and any break in the journal's hash chain."""
    manifest = bundle / NAME
    if not manifest.is_file():
        return [f"{NAME} is missing"]
    listed: dict[str, str] = {}
    problems = []
    for n, line in enumerate(manifest.read_text().splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            problems.append(f"{NAME} line {n}: malformed")
            continue
        listed[rel] = digest
    present = set(_files(bundle))
    for rel, digest in sorted(listed.items()):
        if rel not in present:
            problems.append(f"missing: {rel}")
        elif _digest(bundle / rel) != digest:
            problems.append(f"changed: {rel}")
    problems += [f"added: {rel}" for rel in sorted(present - set(listed))]
    journal = bundle / "journal.jsonl"
    if journal.is_file():
        problems += [f"journal.jsonl {p}" for p in verify_chain(journal)]
    return problems

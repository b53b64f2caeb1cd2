"""MANIFEST.sha256 over every file of a bundle, and its verification.

SIGNATURE is the one file the manifest does not list: it signs the manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

from drillrunner.evidence.journal import verify_chain

NAME = "MANIFEST.sha256"
SIGNATURE = "SIGNATURE"
JOURNAL = "journal.jsonl"
_UNLISTED = frozenset({NAME, SIGNATURE})  # top-level only: artifacts/SIGNATURE is listed


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(bundle: Path) -> list[str]:
    rels = (p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    return sorted(rel for rel in rels if rel not in _UNLISTED)


def write_manifest(bundle: Path) -> Path:
    lines = [f"{_digest(bundle / rel)}  {rel}" for rel in _files(bundle)]
    path = bundle / NAME
    path.write_text("\n".join(lines) + "\n")
    return path


def verify(bundle: Path) -> list[str]:
    """Every change, missing or added file, and any break in the journal's hash chain."""
    manifest = bundle / NAME
    problems = [] if manifest.is_file() else [f"{NAME} is missing"]
    if not problems:
        problems += _verify_listed(bundle, manifest.read_bytes().decode("utf-8", "replace"))
    journal = bundle / JOURNAL
    if not journal.is_file():
        problems.append(f"{JOURNAL} is missing: nothing binds the reports to a run")
    else:
        problems += [f"{JOURNAL} {p}" for p in verify_chain(journal)]
    return problems


def _verify_listed(bundle: Path, manifest: str) -> list[str]:
    listed: dict[str, str] = {}
    problems = []
    for n, line in enumerate(manifest.splitlines(), 1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or rel in listed:
            problems.append(f"{NAME} line {n}: malformed or listed twice")
            continue
        listed[rel] = digest
    present = set(_files(bundle))
    for rel, digest in sorted(listed.items()):
        if rel not in present:  # checked first: a listed path outside the bundle is never read
            problems.append(f"missing: {rel}")
        elif _digest(bundle / rel) != digest:
            problems.append(f"changed: {rel}")
    problems += [f"added: {rel}" for rel in sorted(present - set(listed))]
    return problems

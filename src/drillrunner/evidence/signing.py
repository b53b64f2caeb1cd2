"""Signs an evidence bundle, and checks one: integrity (manifest, hash chain) and origin.

`SIGNATURE` is a JSON file beside the manifest, which does not list it (it signs it):
{algorithm: "ed25519", run_id, manifest_sha256, journal_final_hash, public_key (base64 of
the raw 32-byte key), fingerprint, signature (base64)}. The signature is over the bytes

    b"drillrunner-bundle-signature-v1\\n" + json.dumps(
        {"journal_final_hash": J, "manifest_sha256": M, "run_id": R},
        sort_keys=True, separators=(",", ":"))

where M is the SHA-256 of MANIFEST.sha256's bytes (the manifest lists every other file's
digest, the journal's included), J the SHA-256 of the journal's last line and R the run id
of the journal's `run-start`. The run-start also names the key (`signing`, null for a run
made with --no-sign), so removing the signature, or re-signing with another key, shows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from drillrunner.core.errors import UsageError
from drillrunner.evidence import manifest
from drillrunner.evidence.events import Event
from drillrunner.evidence.journal import final_hash
from drillrunner.evidence.keys import (
    ALGORITHM,
    Signer,
    SigningKeyError,
    default_key_path,
    fingerprint,
    load_or_create_key,
    load_public_key,
    local_signer,
    verify_signature,
)
from drillrunner.evidence.manifest import JOURNAL, SIGNATURE

__all__ = ["Integrity", "Signer", "Verification", "is_signed", "load_or_create_key",
           "sign_bundle", "verify_bundle"]

_CONTEXT = b"drillrunner-bundle-signature-v1\n"


class NotABundle(UsageError):
    """The path holds no evidence bundle at all."""


class Integrity(StrEnum):
    INTACT = "intact"
    UNSIGNED = "intact, unsigned (integrity only)"
    NOT_INTACT = "NOT intact"


class Verification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Integrity
    problems: list[str]
    run_id: str | None = None
    fingerprint: str | None = None  # the signer's, when the signature checked out


class Declared(BaseModel):
    """The run-start's `signing` record: the key the run said it would sign with."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["ed25519"]
    fingerprint: str
    public_key: str


class SignatureFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["ed25519"]
    run_id: str
    manifest_sha256: str
    journal_final_hash: str
    public_key: str
    fingerprint: str
    signature: str


def message(run_id: str, manifest_sha256: str, journal_final_hash: str) -> bytes:
    body = {"journal_final_hash": journal_final_hash, "manifest_sha256": manifest_sha256,
            "run_id": run_id}
    return _CONTEXT + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def run_start(journal: Path) -> dict[str, Any] | None:
    """The journal's first event when it is the run-start."""
    try:
        with open(journal, "rb") as f:
            first = json.loads(f.readline())
    except (OSError, ValueError):
        return None
    return first if isinstance(first, dict) and first.get("event") == Event.RUN_START else None


def declared(start: dict[str, Any]) -> Declared | None:
    """The run-start's signing record; ValueError when it has none or a malformed one."""
    if "signing" not in start:
        raise ValueError("the run-start has no `signing` record (null for a run made with "
                         "--no-sign)")
    if start["signing"] is None:
        return None
    try:
        return Declared.model_validate(start["signing"])
    except ValidationError as exc:
        raise ValueError(f"the run-start's `signing` record is malformed: {exc}") from None


def is_signed(bundle: Path) -> bool:
    """Signed, or meant to be: `drill report` must leave such a bundle's files alone."""
    if (bundle / SIGNATURE).exists():
        return True
    start = run_start(bundle / JOURNAL)
    return start is not None and start.get("signing") is not None


def check_signer(journal: Path, signer: Signer) -> None:
    """ValueError unless `signer` is the key the journal's run-start names."""
    start = run_start(journal)
    if start is None:
        raise ValueError(f"{journal}: no run-start: nothing to sign")
    said = declared(start)
    if said is None:
        raise ValueError("the journal says this run is unsigned (--no-sign); not signing it")
    if signer.public_key_b64 != said.public_key:
        raise ValueError(f"the journal says this run is signed by {said.fingerprint}, "
                         f"not by {signer.fingerprint}")


def sign_bundle(bundle: Path, signer: Signer, run_id: str) -> Path:
    """Writes SIGNATURE over the bundle's manifest (written first), journal and run id."""
    journal = bundle / JOURNAL
    check_signer(journal, signer)
    start = run_start(journal) or {}
    if start.get("run_id") != run_id:
        raise ValueError(f"run id {run_id!r} is not the journal's ({start.get('run_id')!r})")
    manifest_sha = _sha256(bundle / manifest.NAME)
    journal_hash = final_hash(journal)
    sig = signer.sign(message(run_id, manifest_sha, journal_hash))
    record = SignatureFile(algorithm=ALGORITHM, run_id=run_id, manifest_sha256=manifest_sha,
                           journal_final_hash=journal_hash, public_key=signer.public_key_b64,
                           fingerprint=signer.fingerprint,
                           signature=base64.b64encode(sig).decode())
    path = bundle / SIGNATURE
    tmp = bundle / f".{SIGNATURE}.tmp"
    tmp.write_text(json.dumps(record.model_dump(), indent=2) + "\n")
    os.replace(tmp, path)
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verify_bundle(bundle: Path, public_key: Path | None = None) -> Verification:
    """Integrity and origin of a bundle. `public_key`: the key the auditor holds; without
    it, the public part of the local signing key. An unsigned bundle is NOT intact when a
    key is given: authenticity was asked for."""
    if not bundle.is_dir() or not any((bundle / n).exists()
                                      for n in (JOURNAL, manifest.NAME, SIGNATURE)):
        raise NotABundle(f"{bundle}: not an evidence bundle (no {JOURNAL}, {manifest.NAME} "
                         f"or {SIGNATURE})")
    problems = manifest.verify(bundle)
    journal = bundle / JOURNAL
    start = run_start(journal) if journal.is_file() else None
    said: Declared | None = None
    if journal.is_file() and start is None:
        problems.append(f"{JOURNAL}: the first event is not the run-start")
    elif start is not None:
        try:
            said = declared(start)
        except ValueError as exc:
            problems.append(f"{JOURNAL}: {exc}")
    run_id = str(start["run_id"]) if start and "run_id" in start else None
    has_signature = (bundle / SIGNATURE).exists()
    if said is None and not has_signature:
        if public_key is not None:
            problems.append(f"unsigned bundle (made with --no-sign): nothing shows that the "
                            f"key in {public_key} made it")
        status = Integrity.UNSIGNED if not problems else Integrity.NOT_INTACT
        return Verification(status=status, problems=problems, run_id=run_id)
    expected = _expected_key(public_key)
    sig_problems, signer_fp = _check_signature(bundle, said, run_id, expected)
    problems += sig_problems
    if expected is None:
        no_key = (f"no local signing key at {default_key_path()} to check who signed it: "
                  "give the signer's public key with --public-key FILE")
        if not problems:  # all else holds: only the signer is left to check
            raise SigningKeyError(f"{bundle}: {no_key}")
        problems.append(f"signer not checked: {no_key}")
    return Verification(status=Integrity.NOT_INTACT if problems else Integrity.INTACT,
                        problems=problems, run_id=run_id, fingerprint=signer_fp)


def _expected_key(public_key: Path | None) -> tuple[bytes, str] | None:
    """The key the signature must be by, and whose it is; None without any."""
    if public_key is not None:
        return load_public_key(public_key), f"the key in {public_key}"
    local = local_signer()
    return None if local is None else (local.public_key_raw, f"the local key {local.path}")


def _check_signature(bundle: Path, said: Declared | None, run_id: str | None,
                     expected: tuple[bytes, str] | None) -> tuple[list[str], str | None]:
    """Problems with SIGNATURE, and the signer's fingerprint when the signature holds."""
    path = bundle / SIGNATURE
    if not path.is_file():
        by = said.fingerprint if said else "a key"
        return [f"{SIGNATURE} is missing, but the journal says the run was signed by {by}"], None
    try:
        sig = SignatureFile.model_validate_json(path.read_bytes())
        public_raw = base64.b64decode(sig.public_key, validate=True)
        signature = base64.b64decode(sig.signature, validate=True)
    except (ValidationError, ValueError, binascii.Error) as exc:
        return [f"{SIGNATURE}: malformed ({str(exc).splitlines()[0]})"], None
    problems = []
    if said is None:
        problems.append(f"{SIGNATURE} is present, but the journal says the run was not "
                        "signed")
    elif said.public_key != sig.public_key:
        problems.append(f"{SIGNATURE} is by {fingerprint(public_raw)}, but the journal "
                        f"says the run was signed by {said.fingerprint}")
    if sig.fingerprint != fingerprint(public_raw):
        problems.append(f"{SIGNATURE}: its fingerprint does not match its public key")
    actual = {"run_id": run_id, "manifest_sha256": _digest_or_none(bundle / manifest.NAME),
              "journal_final_hash": _final_hash_or_none(bundle / JOURNAL)}
    for field, value in actual.items():
        if getattr(sig, field) != value:
            problems.append(f"{SIGNATURE}: {field} {getattr(sig, field)} does not match the "
                            f"bundle's ({value or 'none'})")
    signed = message(run_id or "", actual["manifest_sha256"] or "",
                     actual["journal_final_hash"] or "")
    if not verify_signature(public_raw, signature, signed):
        problems.append(f"{SIGNATURE}: the signature does not match the manifest, the "
                        "journal's final hash and the run id")
    if expected is not None and public_raw != expected[0]:
        problems.append(f"signed by {fingerprint(public_raw)}, not by {expected[1]} "
                        f"({fingerprint(expected[0])})")
    return problems, None if problems else fingerprint(public_raw)


def _digest_or_none(path: Path) -> str | None:
    return _sha256(path) if path.is_file() else None


def _final_hash_or_none(path: Path) -> str | None:
    return final_hash(path) if path.is_file() else None

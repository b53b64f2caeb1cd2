"""Signed evidence: the signing key, `drill verify` against every kind of tampering, and
`drill report` leaving a signed bundle alone."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from drillrunner.cli import evidence_cmds
from drillrunner.core.errors import DrillError
from drillrunner.evidence import manifest
from drillrunner.evidence.journal import GENESIS, Journal, read
from drillrunner.evidence.keys import SigningKeyError, local_signer, parse_public_key
from drillrunner.evidence.signing import (
    Integrity,
    Signer,
    is_signed,
    load_or_create_key,
    verify_bundle,
)
from drillrunner.report.bundle import render_bundle

REPORTS = ("summary.json", "report.md", "report.html", "junit.xml")


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keys go under a temporary config folder, never the user's."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv("DRILL_SIGNING_KEY", raising=False)
    return home


@pytest.fixture
def signer() -> Signer:
    return load_or_create_key()


def drill(*args: str) -> int:
    """`drill <args>` with the evidence commands; exceptions become exit codes as in main."""
    app = typer.Typer()
    evidence_cmds.register(app)
    try:
        result = typer.main.get_command(app).main(args=list(args), prog_name="drill",
                                                  standalone_mode=False)
    except DrillError as exc:
        print(f"drill: {exc}")
        return int(exc.exit_code)
    return result if isinstance(result, int) else 0


def write_run(tmp_path: Path, signer: Signer | None, name: str = "bundle") -> Path:
    """A two-scenario run (one passed, one failed) written through Journal, then rendered."""
    bundle = tmp_path / name
    journal = Journal(bundle / "journal.jsonl")
    journal.append("run-start", run_id="r1", target="local", pid=1, scenarios=["ok", "bad"],
                   dry_run=False, environment={}, claims_registry=[],
                   claim_citations={}, audit_manifests=[],
                   signing=signer.record() if signer else None)
    for name_, outcome in (("ok", "passed"), ("bad", "failed")):
        t = time.monotonic()
        journal.append("scenario-start", scenario=name_, file=f"scenarios/{name_}.yaml",
                       title=name_, claims=[], slo={"rto": 15.0}, dry_run=False)
        for i, status in enumerate(("ok", "fail", "ok")):
            journal.append("op", scenario=name_, workload="w", op_seq=i, invoked=t + i,
                           completed=t + i + 0.01, status=status, error=None)
        verdict = "PASS" if outcome == "passed" else "FAIL"
        journal.append("check", scenario=name_, check="no_acknowledged_write_lost",
                       verdict=verdict, summary=f"lost writes: {verdict}", evidence={},
                       measurements={"lost_acknowledged_writes": 0 if verdict == "PASS" else 4})
        journal.append("scenario-end", scenario=name_, outcome=outcome, reason=outcome,
                       seconds=3.0, measurements={"scenario_seconds": 3.0}, undo_failures=[])
    journal.append("run-end", run_id="r1", outcome="failed", exit_code=1)
    journal.close()
    render_bundle(bundle, signer)
    return bundle


def rechain(bundle: Path, records: list[dict[str, Any]]) -> None:
    """What a forger does: rewrite the journal with seq and every prev recomputed, then
    re-render the reports and the manifest, so that integrity alone holds."""
    prev, lines = GENESIS, []
    for seq, rec in enumerate(records):
        line = json.dumps({**rec, "seq": seq, "prev": prev}, separators=(",", ":")).encode()
        lines.append(line)
        prev = hashlib.sha256(line).hexdigest()
    (bundle / "journal.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    render_bundle(bundle)
    assert manifest.verify(bundle) == []  # the manifest and the chain are consistent again


def snapshot(bundle: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(bundle)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(bundle.rglob("*")) if p.is_file()}


def not_intact(bundle: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert verify_bundle(bundle, *(Path(a) for a in args[1:2])).status is Integrity.NOT_INTACT
    assert drill("verify", str(bundle), *args) == 1
    out = capsys.readouterr().out
    assert "NOT intact" in out
    return out


# -- the key ------------------------------------------------------------------------------

def test_key_is_created_0600_on_first_use_and_reused(config_home: Path) -> None:
    path = config_home / "drillrunner" / "signing-key"
    assert not path.exists()
    first = load_or_create_key()
    assert first.path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create_key()
    assert again.fingerprint == first.fingerprint and path.read_bytes() == pem
    raw = base64.b64decode(first.public_key_b64)
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    assert len(raw) == 32 and first.fingerprint == f"SHA256:{digest}"


def test_drill_signing_key_sets_where_the_key_lives(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   config_home: Path) -> None:
    path = tmp_path / "keys" / "drill.key"
    monkeypatch.setenv("DRILL_SIGNING_KEY", str(path))
    assert load_or_create_key().path == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (config_home / "drillrunner").exists()


def _team_key(path: Path, openssh: bool = False) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    fmt = PrivateFormat.OpenSSH if openssh else PrivateFormat.PKCS8
    pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, fmt, NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)
    return pem


@pytest.mark.parametrize("openssh", [False, True])
def test_a_team_key_is_used_and_never_overwritten(tmp_path: Path, config_home: Path,
                                                  openssh: bool) -> None:
    team = tmp_path / "team.key"
    pem = _team_key(team, openssh)
    signer = load_or_create_key(team)
    assert signer.path == team and team.read_bytes() == pem
    bundle = write_run(tmp_path, signer)
    assert team.read_bytes() == pem
    assert not (config_home / "drillrunner").exists()  # no local key was made
    assert verify_bundle(bundle, _public_file(tmp_path, signer)).status is Integrity.INTACT
    with pytest.raises(SigningKeyError, match="no such file"):
        load_or_create_key(tmp_path / "missing.key")
    assert not (tmp_path / "missing.key").exists()


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    team = tmp_path / "team.key"
    _team_key(team)
    team.chmod(0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        load_or_create_key(team)


def _public_file(tmp_path: Path, signer: Signer, fmt: str = "base64") -> Path:
    path = tmp_path / f"signer.{fmt}"
    path.write_text(signer.public_pem() if fmt == "pem" else signer.public_key_b64 + "\n")
    return path


def test_drill_key_prints_what_verify_accepts(tmp_path: Path, signer: Signer,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert drill("key") == 0
    out = capsys.readouterr().out
    assert signer.fingerprint in out and signer.public_key_b64 in out
    for fmt in ("base64", "pem"):
        assert drill("key", "--format", fmt) == 0
        text = capsys.readouterr().out
        assert parse_public_key(text.strip()) == signer.public_key_raw


# -- verify -------------------------------------------------------------------------------

def test_a_signed_bundle_is_intact(tmp_path: Path, signer: Signer,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_run(tmp_path, signer)
    assert (bundle / "SIGNATURE").is_file()
    sig = json.loads((bundle / "SIGNATURE").read_text())
    assert sig["fingerprint"] == signer.fingerprint and sig["run_id"] == "r1"
    assert "SIGNATURE" not in (bundle / manifest.NAME).read_text()
    assert drill("verify", str(bundle)) == 0
    assert f"intact, signed by {signer.fingerprint}" in capsys.readouterr().out
    for fmt in ("base64", "pem"):
        assert drill("verify", str(bundle), "--public-key",
                     str(_public_file(tmp_path, signer, fmt))) == 0


def test_ssh_public_key_line_is_accepted(tmp_path: Path, signer: Signer) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    line = Ed25519PublicKey.from_public_bytes(signer.public_key_raw).public_bytes(
        Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    path = tmp_path / "id.pub"
    path.write_text(line + " auditor@example\n")
    bundle = write_run(tmp_path, signer)
    assert verify_bundle(bundle, path).status is Integrity.INTACT


def test_deleting_a_failed_scenario_and_rechaining_is_caught(
        tmp_path: Path, signer: Signer, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_run(tmp_path, signer)
    kept = [e for e in read(bundle / "journal.jsonl") if e.get("scenario") != "bad"]
    kept[-1]["outcome"], kept[-1]["exit_code"] = "passed", 0
    rechain(bundle, kept)
    out = not_intact(bundle, capsys)
    assert "the signature does not match" in out


def test_resigning_with_another_key_is_caught(tmp_path: Path, signer: Signer,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_run(tmp_path, signer)
    forger = load_or_create_key(_forger_key(tmp_path))
    events = [e for e in read(bundle / "journal.jsonl") if e.get("scenario") != "bad"]
    events[0]["signing"] = forger.record()
    rechain(bundle, events)
    render_bundle(bundle, forger)
    assert verify_bundle(bundle, _public_file(tmp_path, forger)).status is Integrity.INTACT
    out = not_intact(bundle, capsys)
    assert f"signed by {forger.fingerprint}, not by the local key" in out
    assert drill("verify", str(bundle), "--public-key",
                 str(_public_file(tmp_path, signer))) == 1


def _forger_key(tmp_path: Path) -> Path:
    path = tmp_path / "forger.key"
    _team_key(path)
    return path


def test_reordered_events_are_caught(tmp_path: Path, signer: Signer,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_run(tmp_path, signer)
    events = list(read(bundle / "journal.jsonl"))
    events[2], events[3] = events[3], events[2]
    rechain(bundle, events)
    not_intact(bundle, capsys)


def test_a_missing_journal_is_not_intact(tmp_path: Path, signer: Signer,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_run(tmp_path, signer)
    (bundle / "journal.jsonl").unlink()
    manifest.write_manifest(bundle)  # the manifest no longer lists it
    out = not_intact(bundle, capsys)
    assert "journal.jsonl is missing" in out


def test_a_missing_journal_is_not_intact_even_unsigned(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_run(tmp_path, None)
    (bundle / "journal.jsonl").unlink()
    manifest.write_manifest(bundle)
    assert "journal.jsonl is missing" in not_intact(bundle, capsys)


def test_a_rewritten_manifest_is_caught(tmp_path: Path, signer: Signer,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_run(tmp_path, signer)
    html = bundle / "report.html"
    html.write_text(html.read_text().replace("failed", "passed"))
    manifest.write_manifest(bundle)
    assert manifest.verify(bundle) == []
    assert "manifest_sha256" in not_intact(bundle, capsys)


def test_a_changed_byte_and_an_added_file_are_caught(tmp_path: Path, signer: Signer,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_run(tmp_path, signer)
    html = bundle / "report.html"
    original = html.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 1
    html.write_bytes(bytes(data))
    assert "changed: report.html" in not_intact(bundle, capsys)
    html.write_bytes(original)
    assert drill("verify", str(bundle)) == 0
    (bundle / "artifacts").mkdir(exist_ok=True)
    (bundle / "artifacts" / "SIGNATURE").write_text("x")
    assert "added: artifacts/SIGNATURE" in not_intact(bundle, capsys)


@pytest.mark.parametrize("damage", ["delete", "garble"])
def test_a_signed_run_without_a_valid_signature_is_not_intact(
        tmp_path: Path, signer: Signer, capsys: pytest.CaptureFixture[str],
        damage: str) -> None:
    bundle = write_run(tmp_path, signer)
    if damage == "delete":
        (bundle / "SIGNATURE").unlink()
        assert "SIGNATURE is missing" in not_intact(bundle, capsys)
    else:
        sig = json.loads((bundle / "SIGNATURE").read_text())
        sig["signature"] = base64.b64encode(bytes(64)).decode()
        (bundle / "SIGNATURE").write_text(json.dumps(sig))
        assert "the signature does not match" in not_intact(bundle, capsys)


def test_a_wrong_public_key_is_not_intact(tmp_path: Path, signer: Signer,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_run(tmp_path, signer)
    other = load_or_create_key(_forger_key(tmp_path))
    out = not_intact(bundle, capsys, "--public-key", str(_public_file(tmp_path, other)))
    assert f"not by the key in {tmp_path}" in out


def test_no_sign_verifies_as_unsigned_unless_a_key_is_asked_for(
        tmp_path: Path, signer: Signer, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = write_run(tmp_path, None)
    assert not (bundle / "SIGNATURE").exists()
    assert drill("verify", str(bundle)) == 0
    assert "intact, unsigned (integrity only)" in capsys.readouterr().out
    out = not_intact(bundle, capsys, "--public-key", str(_public_file(tmp_path, signer)))
    assert "unsigned bundle" in out


def test_stripping_the_signature_record_is_not_unsigned(tmp_path: Path, signer: Signer,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Only an explicit `signing: null` (--no-sign) reads as unsigned."""
    bundle = write_run(tmp_path, signer)
    (bundle / "SIGNATURE").unlink()
    events = list(read(bundle / "journal.jsonl"))
    del events[0]["signing"]
    rechain(bundle, events)
    assert "no `signing` record" in not_intact(bundle, capsys)


def test_what_is_no_bundle_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert drill("verify", str(tmp_path / "missing")) == 2
    (tmp_path / "empty").mkdir()
    assert drill("verify", str(tmp_path / "empty")) == 2
    assert "not an evidence bundle" in capsys.readouterr().out


def test_a_signed_bundle_without_a_key_to_check_it_asks_for_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    team = tmp_path / "team.key"
    _team_key(team)
    bundle = write_run(tmp_path, load_or_create_key(team))
    assert local_signer() is None
    assert drill("verify", str(bundle)) == 2
    assert "--public-key" in capsys.readouterr().out
    (bundle / "junit.xml").write_text("<testsuites/>")
    assert "signer not checked" in not_intact(bundle, capsys)  # what is wrong is still said


def test_render_bundle_refuses_a_signer_the_journal_does_not_name(tmp_path: Path,
                                                                  signer: Signer) -> None:
    unsigned = write_run(tmp_path, None, "unsigned")
    with pytest.raises(ValueError, match="unsigned"):
        render_bundle(unsigned, signer)
    bundle = tmp_path / "other"
    journal = Journal(bundle / "journal.jsonl")
    forger = load_or_create_key(_forger_key(tmp_path))
    journal.append("run-start", run_id="r1", target="local", signing=forger.record())
    journal.close()
    with pytest.raises(ValueError, match="signed by"):
        render_bundle(bundle, signer)
    assert not (bundle / "summary.json").exists()  # refused before anything was written


# -- report -------------------------------------------------------------------------------

@pytest.fixture
def signed_bundle(tmp_path: Path, signer: Signer) -> Iterator[Path]:
    yield write_run(tmp_path, signer)


def test_report_leaves_a_signed_bundle_byte_identical(signed_bundle: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert is_signed(signed_bundle)
    before = snapshot(signed_bundle)
    assert drill("report", str(signed_bundle)) == 0
    out = capsys.readouterr().out
    assert all(f"{name}: matches" in out for name in REPORTS), out
    assert snapshot(signed_bundle) == before
    assert drill("verify", str(signed_bundle)) == 0


def test_report_shows_a_report_that_was_not_derived_from_the_journal(
        signed_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    md = signed_bundle / "report.md"
    md.write_text(md.read_text() + "\nall good\n")
    before = snapshot(signed_bundle)
    assert drill("report", str(signed_bundle)) == 1
    out = capsys.readouterr().out
    assert "report.md: DIFFERS" in out and "summary.json: matches" in out
    assert snapshot(signed_bundle) == before


def test_report_out_writes_elsewhere(signed_bundle: Path, tmp_path: Path) -> None:
    before = snapshot(signed_bundle)
    out = tmp_path / "rendered"
    assert drill("report", str(signed_bundle), "--out", str(out)) == 0
    for name in REPORTS:
        assert (out / name).read_bytes() == (signed_bundle / name).read_bytes()
    assert snapshot(signed_bundle) == before
    assert drill("report", str(signed_bundle), "--out", str(signed_bundle)) == 2


def test_report_rerenders_an_unsigned_bundle_in_place(tmp_path: Path) -> None:
    bundle = write_run(tmp_path, None)
    summary = (bundle / "summary.json").read_bytes()
    for name in (*REPORTS, manifest.NAME):
        (bundle / name).unlink()
    assert drill("report", str(bundle)) == 0
    assert (bundle / "summary.json").read_bytes() == summary
    assert verify_bundle(bundle).status is Integrity.UNSIGNED


def _killed_run(tmp_path: Path, signer: Signer) -> Path:
    """A run killed before its reports were written: a journal, nothing else."""
    bundle = tmp_path / "killed"
    journal = Journal(bundle / "journal.jsonl")
    journal.append("run-start", run_id="r2", target="local", pid=1, scenarios=[],
                   dry_run=False, environment={}, claims_registry=[], claim_citations={},
                   audit_manifests=[], signing=signer.record())
    journal.close()
    return bundle


def test_report_finishes_a_killed_run_only_when_asked_and_with_its_key(
        tmp_path: Path, signer: Signer, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _killed_run(tmp_path, signer)
    assert drill("report", str(bundle)) == 1  # nothing to compare with, nothing written
    assert "--finish" in capsys.readouterr().out
    assert sorted(p.name for p in bundle.iterdir()) == ["journal.jsonl"]
    other = _forger_key(tmp_path)
    assert drill("report", str(bundle), "--finish", "--sign-key", str(other)) == 2
    assert sorted(p.name for p in bundle.iterdir()) == ["journal.jsonl"]
    assert drill("report", str(bundle), "--finish") == 0
    assert verify_bundle(bundle).status is Integrity.INTACT
    before = snapshot(bundle)
    assert drill("report", str(bundle), "--finish") == 2  # a finished bundle stays as it is
    assert snapshot(bundle) == before

"""Redaction: every kind of secret planted anywhere a run writes is in no bundle file, and
fields that only look like secrets are kept."""

from __future__ import annotations

import json
import string
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drillrunner.evidence.journal import Journal, read
from drillrunner.evidence.redact import MASK, redact, redact_text
from drillrunner.report.artifacts import collect
from drillrunner.report.bundle import render_bundle

# Random secrets with the characters that broke URL and key=value parsing: `/`, `@`, `:`;
# each has a letter beyond hex so that it cannot occur in a hash or a timestamp by chance.
SECRETS = st.text(alphabet=string.ascii_letters + string.digits + "/@:", min_size=12,
                  max_size=40).filter(
    lambda s: any(c in "/@:" for c in s) and any(c not in string.hexdigits + "/@:" for c in s))

JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="u" '

# Each kind of secret, as a run could come to write it.
KINDS: dict[str, Callable[[str], Any]] = {
    "env-dict": lambda s: {"PGPASSWORD": s, "REDIS_AUTH_TOKEN": s, "APP_SECRET_KEY": s},
    "env-text": lambda s: f"PGPASSWORD={s} psql -h db -U app",
    "secret-keys": lambda s: {"password": s, "passwd": s, "token": s, "api_key": s,
                              "credential": s, "dsn": s, "authorization": s,
                              "private_key": s, "requirepass": s, "masterauth": s,
                              "clientSecret": s, "credentials": {"value": s}},
    "redis-config": lambda s: f"port 6379\nrequirepass {s}\nmasterauth {s}\nappendonly yes\n",
    "redis-argv": lambda s: ["redis-server", "--port", "1", "--requirepass", s],
    "redis-argv-text": lambda s: f"redis-server --requirepass {s} --masterauth {s}",
    "redis-acl": lambda s: f"user default on >{s} ~* +@all",
    "jaas": lambda s: {"sasl.jaas.config": f'{JAAS}password="{s}";'},
    "jaas-text": lambda s: f'sasl.jaas.config={JAAS}password="{s}";',
    "postgres-url": lambda s: f"postgresql://app:{s}@db.internal:5432/orders",
    "redis-url": lambda s: f"could not reach redis://:{s}@127.0.0.1:17010/0 (refused)",
    "libpq-conninfo": lambda s: f"host=127.0.0.1 port=17000 user=app password={s} dbname=x",
    "header-bearer": lambda s: f"GET /v1/orders\nAuthorization: Bearer {s}\nAccept: */*",
    "header-basic": lambda s: f"Proxy-Authorization: Basic {s}",
    "header-dict": lambda s: {"Authorization": f"Bearer {s}", "Accept": "application/json"},
    "json-in-string": lambda s: json.dumps({"user": "app", "password": s}),
    "log-line": lambda s: f"2024-05-01T10:00:00Z oms: connecting with password={s} to db",
    "exception": lambda s: RuntimeError(f"connect failed: postgresql://app:{s}@db/x"),
    "called-process": lambda s: subprocess.CalledProcessError(
        1, ["redis-cli", "-p", "1", "CONFIG", "SET", "requirepass", s]),
    "private-key-pem": lambda s: f"-----BEGIN PRIVATE KEY-----\n{s}\n-----END PRIVATE KEY-----",
}


class _Member:
    def __init__(self, name: str) -> None:
        self.name = name


class _Dep:
    def members(self) -> list[_Member]:
        return [_Member("redis-0")]


class _Target:
    """What artifacts.collect reads: a member's log tail and configuration."""

    def __init__(self, text: str) -> None:
        self.text = text

    def deployments(self) -> list[_Dep]:
        return [_Dep()]

    def log_tail(self, member: _Member, lines: int) -> str:
        return f"1:M 01 May 2024 * Ready\n{self.text}\n"

    def member_config(self, member: _Member) -> dict[str, str]:
        return {"redis.conf": self.text}


def plant(bundle: Path, planted: Any) -> None:
    """A run whose every free-form field carries `planted`, then its bundle."""
    text = planted if isinstance(planted, str) else str(planted)
    journal = Journal(bundle / "journal.jsonl")
    journal.append("run-start", run_id="r1", target="local", pid=1, scenarios=["s"],
                   dry_run=False, environment={"planted": planted, "note": text},
                   claims_registry=[], claim_citations={}, audit_manifests=[], signing=None)
    t = time.monotonic()
    journal.append("scenario-start", scenario="s", file="scenarios/s.yaml", title=text,
                   claims=[], slo={"rto": 15.0}, dry_run=False)
    journal.append("action-invoke", scenario="s", name="redis.configure", args=planted)
    journal.append("op", scenario="s", workload="w", op_seq=0, invoked=t, completed=t + 0.01,
                   status="fail", error=text)
    journal.append("error", scenario="s", error=planted)
    journal.append("check", scenario="s", check="no_acknowledged_write_lost", verdict="FAIL",
                   summary=text, evidence={"detail": planted, "log": text},
                   measurements={"lost_acknowledged_writes": 1})
    journal.append("scenario-end", scenario="s", outcome="failed", reason=text, seconds=1.0,
                   measurements={"scenario_seconds": 1.0}, undo_failures=[])
    journal.append("run-end", run_id="r1", outcome="failed", exit_code=1)
    journal.close()
    collect(_Target(text), bundle)
    render_bundle(bundle)


@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(secret=SECRETS)
def test_no_planted_secret_reaches_any_bundle_file(kind: str, secret: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle"
        plant(bundle, KINDS[kind](secret))
        files = [p for p in bundle.rglob("*") if p.is_file()]
        assert len(files) >= 7  # journal, four reports, manifest, artifacts
        for path in files:
            body = path.read_text(errors="replace")
            assert secret not in body, f"{kind}: {path.name}: {body[:2000]}"
            # JSON escapes nothing in these secrets, but check the escaped form anyway
            assert json.dumps(secret)[1:-1] not in body, f"{kind}: {path.name}"


HARMLESS = {
    "checks_passed": 3, "passed": True, "checks_failed": 0,
    "password_policy_enabled": True, "password_auth": False, "token": None,
    "tokens_used": 3, "max_token_count": 7, "token_ttl_seconds": 30,
    "secretName": "oms-tls", "secretKeyRef": {"name": "pg-credentials", "key": "password"},
    "secret": {"secretName": "oms-config", "defaultMode": 288},
    "password_file": "/run/secrets/pg", "passes": 2, "passenger_count": 4,
    "tokenizer": "bpe", "lost_acknowledged_writes": 0, "fingerprint": "SHA256:abc",
    "signing": {"algorithm": "ed25519", "public_key": "MCowBQYDK2VwAyEA"},
    "TOKENIZER_PATH": "/opt/tok", "MAX_TOKENS": 512, "empty_password": "",
    "db_password": "${PG_PASSWORD}", "oms_token": "{{ .token }}",
}
HARMLESS_TEXT = [
    "checks passed: 3 of 3",
    "checks_passed=3 passed=true password_policy_enabled: true",
    "tokens_used=3, max_token_count=7",
    "FATAL:  password authentication failed for user \"app\"",
    "password: ${FEAST_OFFLINE_PASSWORD}",
    "postgresql://app@db:5432/x and http://host:8080/path",
    "redis-server --port 17010 --appendonly yes",
    "secretName: feast-tls",
]


def test_fields_that_only_look_like_secrets_stay(tmp_path: Path) -> None:
    assert redact(HARMLESS) == HARMLESS
    for text in HARMLESS_TEXT:
        assert redact_text(text) == text
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.append("check", measurements=HARMLESS, summary="; ".join(HARMLESS_TEXT))
    journal.close()
    event = next(read(path))
    assert event["measurements"] == HARMLESS
    assert event["summary"] == "; ".join(HARMLESS_TEXT)


@pytest.mark.parametrize(("text", "shown"), [
    ("PGPASSWORD=pa/ss@x psql", f"PGPASSWORD={MASK} psql"),
    ("Authorization: Bearer eyJ.abc.def", f"Authorization: Bearer {MASK}"),
    ("Proxy-Authorization: Basic dXNlcjpwYXNz", f"Proxy-Authorization: Basic {MASK}"),
    ('{"user": "app", "password": "hunter2"}', f'{{"user": "app", "password": "{MASK}"}}'),
    ("requirepass s3cret", f"requirepass {MASK}"),
    ("--requirepass s3cret --port 1", f"--requirepass {MASK} --port 1"),
    ("masterauth s3cret", f"masterauth {MASK}"),
    ('PlainLoginModule required username="u" password="p@ss";',
     f'PlainLoginModule required username="u" password="{MASK}";'),
    ("postgresql://u:p@ss/w@host/db", f"postgresql://u:{MASK}@host/db"),
    ("redis://:secret@host:6379", f"redis://:{MASK}@host:6379"),
    ("host=db user=app password=x/y@z dbname=o", f"host=db user=app password={MASK} dbname=o"),
    ("password='a b\\'c' dbname=o", f"password='{MASK}' dbname=o"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
     f"-----BEGIN RSA PRIVATE KEY-----{MASK}-----END RSA PRIVATE KEY-----"),
    ("user default on >s3cret ~* +@all", f"user default on {MASK} ~* +@all"),
    ("password: 123456", f"password: {MASK}"),
])
def test_each_kind_is_masked_as_documented(text: str, shown: str) -> None:
    assert redact_text(text) == shown


def test_values_under_secret_keys() -> None:
    assert redact({"password": 123456, "db_password": "x", "api_key": "k", "dsn": None,
                   "credentials": {"user": "u", "password": "p"},
                   "argv": ["redis-server", "--requirepass", "x", "--port", "1"]}) == {
        "password": MASK, "db_password": MASK, "api_key": MASK, "dsn": None,
        "credentials": {"user": MASK, "password": MASK},
        "argv": ["redis-server", "--requirepass", MASK, "--port", "1"]}


def test_objects_are_redacted_as_text_not_passed_through() -> None:
    assert redact({"exc": ValueError("dsn=postgresql://a:b@c/d")}) == {"exc": f"dsn={MASK}"}
    assert redact({"raw": b"password=x"}) == {"raw": f"password={MASK}"}
    assert redact({"ratio": float("inf")}) == {"ratio": "inf"}

"""The plaintext-credential rule: credentials found by the shape of a value (URLs with
user-info, `requirepass`/`masterauth` lines, JAAS and `key = value` passwords, bearer and
basic tokens, private key blocks, `--password`-style flags) and by a setting's name when its
value is a literal, in env values, ConfigMaps (files in them too; a ConfigMap loaded through
envFrom is reported at its own key), command/args, exec probes and Secret manifests.

Not credentials: booleans (`ALLOW_EMPTY_PASSWORD: "no"`), empty values, placeholders
(`${VAR}`, `$VAR`, `$(VAR)`, `{{ ... }}`, `<changeme>`: a template marker, not a secret),
references (`*_FILE`, `*_NAME`, paths, `valueFrom.secretKeyRef`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from drillrunner.audit.k8s import (
    FALSE,
    TRUE,
    config_data,
    containers,
    data_line,
    items,
    mapping,
    workloads,
)
from drillrunner.audit.model import LineDict, Problem, Resource, line_of
from drillrunner.audit.registry import rule

_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|(^|_)PASS$|(^|_)PWD$|SECRET|TOKEN|API_?KEY"
                          r"|CREDENTIAL|PRIVATE_?KEY|AUTH_?PASS", re.I)
# Names that point to a credential, configure one or switch one on, rather than hold one.
_REFERENCE_NAME = re.compile(
    r"[_.-](NAME|FILE|PATH|DIR|REF|KEY_?ID|ENABLED|TTL|TIMEOUT|URL|URI|ENDPOINT|HOST|PORT"
    r"|USER|USERNAME|HEADER|TYPE|ALGORITHM|LENGTH|EXPIRY|EXPIRATION|LIFETIME|MODE|POLICY"
    r"|ISSUER|AUDIENCE|SCOPE|ENCRYPTION|HASH|HASHING|ALGO|ROTATION|STRENGTH)$"
    r"|^(ALLOW|ENABLE|DISABLE|USE|REQUIRE|SKIP)_|EXISTING", re.I)
# Templating and shell expansion: `$(VAR)`, `${VAR}`, `$VAR`, `$(cmd ...)`, `{{ ... }}`,
# `%(name)s`, and a whole value in angle brackets (`<changeme>`). Searched, so linear.
_PLACEHOLDER = re.compile(r"\$[({A-Za-z_]|\{\{|%\([^()]*\)s|^<[^<>]*>$")
# A scheme starts where a run of scheme characters does (else each start in a long line
# rescans the rest of it); the user may be empty (`redis://:secret@host`).
_URL_CRED = re.compile(r"(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^:/@\s]*:([^@\s/]+)@", re.I)
# `key: value` / `key = value` / `"key": "value"` / JAAS `password="..."`: the key ends in a
# credential word (client_secret, db.password; secret_name and password_file do not).
_KV_CRED = re.compile(r"(?<![\w.-])([\w.-]*?(password|passwd|secret|token|api[_-]?key))"
                      r"['\"]?\s*[:=]\s*['\"]?([^\s'\",;}]*)", re.I)
# A Kubernetes object name (`tls_secret: oms-tls`): a reference to a Secret, not one.
_OBJECT_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
_CONF_CRED = re.compile(r"^\s*(?:requirepass|masterauth|sentinel\s+auth-pass\s+\S+)\s+"
                        r"(['\"]?)(\S+)", re.I)
# A token has a digit or punctuation in it: "Bearer authentication" is prose.
_AUTH_HEADER = re.compile(r"\b(Bearer|Basic)\s+['\"]?(?=[A-Za-z]*[0-9._~+/=-])"
                          r"([A-Za-z0-9._~+/=-]{8,})")
# PlainLoginModule's `user_<name>="<password>"` entries.
_JAAS_USER = re.compile(r"\buser_[\w.-]+\s*=\s*\"([^\"]{0,512})\"")
_PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z]+ )*PRIVATE KEY-----")
# `--password x`, `--session-secret=x`: a flag whose name ends in a credential word.
_FLAG_WORDS = r"[\w.-]*?(?:requirepass|masterauth|password|passwd|pass|token|secret|api-?key)"
_FLAG_CRED = re.compile(rf"(?:^|\s)--?({_FLAG_WORDS})(?:=|\s+)(['\"]?)(\S+)", re.I)
_COMMANDS = re.compile(r"[;&|]+")
_REDIS_CLI_AUTH = re.compile(r"\s-a\s+(['\"]?)(\S+)")
_FLAG_NAME = re.compile(rf"^--?{_FLAG_WORDS}$", re.I)


def _placeholder(value: str) -> bool:
    return bool(_PLACEHOLDER.search(value))


def _secret_value(value: str) -> bool:
    """A value that is a credential where its place says one goes: not empty, a
    placeholder, a boolean or null, a path (a reference to a file) or the next flag."""
    v = value.strip().strip("'\"")
    return bool(v) and not _placeholder(v) and v.lower() not in TRUE | FALSE | {"null", "~"} \
        and not v.startswith(("/", "-"))


def _secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) and not _REFERENCE_NAME.search(name)


def _named_credential(name: str, value: str) -> bool:
    """A one-line value that is a credential by its setting's name (`tls_secret: oms-tls`
    names a Secret object instead)."""
    v = value.strip()
    return _secret_name(name) and _secret_value(v) and "\n" not in v and not (
        name.lower().endswith("secret") and _OBJECT_NAME.match(v))


def _kv_credential(line: str) -> str | None:
    for m in _KV_CRED.finditer(line):
        value, word = m.group(3), m.group(2).lower()
        if word == "secret" and _OBJECT_NAME.match(value):
            continue
        if _secret_value(value):
            return f"a literal {m.group(1).lower()}"
    return None


def _line_credential(line: str) -> str | None:
    """What credential a line of text holds (never the value), None when none."""
    if line.lstrip().startswith(("#", "//", ";")):
        return None
    if _PRIVATE_KEY.search(line):
        return "a private key"
    if any(_secret_value(m.group(1)) for m in _URL_CRED.finditer(line)):
        return "a URL with user:password@"
    if (m := _CONF_CRED.match(line)) and _secret_value(m.group(2)):
        return "a literal " + ("sentinel auth-pass" if m.group(0).lstrip().lower()
                               .startswith("sentinel") else m.group(0).split()[0].lower())
    if any(_secret_value(m.group(1)) for m in _JAAS_USER.finditer(line)):
        return "a literal JAAS user password"
    for m in _AUTH_HEADER.finditer(line):
        if _secret_value(m.group(2)):
            return f"a literal {m.group(1).lower()} token"
    for m in _FLAG_CRED.finditer(line):
        if _secret_value(m.group(3)):
            return f"a literal --{m.group(1).lower()}"
    if "redis-cli" in line and any(
            (m := _REDIS_CLI_AUTH.search(cmd, cmd.find("redis-cli"))) and _secret_value(m.group(2))
            for cmd in _COMMANDS.split(line) if "redis-cli" in cmd):
        return "a literal redis-cli -a password"
    return _kv_credential(line)


def inline_credentials(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line in the text, description) of each line holding a credential."""
    for n, line in enumerate(text.splitlines() or [text], 1):
        if (what := _line_credential(line)) is not None:
            yield n, what


def _value_line(holder: Any, key: Any, inner: int) -> int | None:
    """The manifest line of line `inner` of the value at `key` (literal blocks only)."""
    if isinstance(holder, LineDict) and holder.blocks and key in holder.blocks:
        return holder.blocks[key] + inner
    return line_of(holder, key)


def _argv_problems(argv: list[Any], where: str) -> Iterator[tuple[int | None, str]]:
    """Credentials in a command or args list: in an item, or the item after a
    `--password`-style flag (or `-a` of redis-cli)."""
    redis_cli = False
    for i, arg in enumerate(argv):
        text = str(arg)
        redis_cli = redis_cli or text.rsplit("/", 1)[-1] == "redis-cli"
        base = line_of(argv, i)
        if i and isinstance(argv[i - 1], str) and (
                _FLAG_NAME.match(argv[i - 1]) or (redis_cli and argv[i - 1] == "-a")):
            if _secret_value(text):
                yield base, f"{where} passes a literal {argv[i - 1].lstrip('-')}"
            continue
        for n, what in inline_credentials(text):
            yield (base + n if base and "\n" in text else base), f"{where} contains {what}"


def _container_problems(c: dict[str, Any]) -> Iterator[tuple[int | None, str]]:
    for env in items(c.get("env")):
        name, value = str(mapping(env).get("name", "")), mapping(env).get("value")
        if value is None:  # valueFrom: secretKeyRef and friends are the right way
            continue
        if _named_credential(name, str(value)):
            yield (line_of(env, "value"), f"env {name} holds a literal credential; use "
                                          "valueFrom.secretKeyRef")
            continue
        for n, what in inline_credentials(str(value)):
            yield _value_line(env, "value", n), f"env {name} contains {what}"
    for field in ("command", "args"):
        yield from _argv_problems(items(c.get(field)), field)
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        command = mapping(mapping(c.get(probe)).get("exec")).get("command")
        yield from _argv_problems(items(command), f"{probe} exec")


def _configmap_problems(res: Resource) -> Iterator[Problem]:
    data = res.body.get("data")
    for key, text in config_data(res).items():
        if _named_credential(key, text):
            yield Problem(res, f"key {key} holds a literal credential",
                          line=data_line(res, key))
            continue
        for n, what in inline_credentials(text):
            yield Problem(res, f"key {key} contains {what}", line=_value_line(data, key, n))


@rule("no-plaintext-credentials",
      claims=["C14-external-secrets", "C04-persistent-storage", "C03-simulation-secrets"])
def no_plaintext_credentials(resources: Sequence[Resource]) -> Iterator[Problem]:
    """No credential written in env values, args, ConfigMaps or Secret manifests (use
    secretKeyRef to an ExternalSecret-managed Secret)."""
    for res, spec in workloads(resources):
        for c, _ in containers(spec):
            for line, message in _container_problems(c):
                yield Problem(res, message, c.get("name"), line)
    for res in resources:
        if res.kind == "ConfigMap":
            yield from _configmap_problems(res)
        elif res.kind == "Secret" and (res.body.get("data") or res.body.get("stringData")):
            field = "stringData" if res.body.get("stringData") else "data"
            yield Problem(res, "a Secret with its values in the manifests (committed to git); "
                               "use an ExternalSecret", line=line_of(res.body, field))

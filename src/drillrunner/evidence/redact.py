"""Secrets never reach the journal, a report or an artifact: values under secret-looking keys
and credentials inside strings are replaced before anything is written.

The rules (the README's "What is redacted" table lists them with examples):
- A key is secret when one of its words (split at `_ - . space` and camelCase) is a secret
  word (`password`, `token`, `secret`, `dsn`...), ends with one (`PGPASSWORD`,
  `accessToken`), or two adjacent words form one (`api_key`, `private_key`); an upper-case
  environment name when it merely contains PASSWORD, PASSWD, SECRET, TOKEN, CREDENTIAL or
  API_KEY. Unless its last word only describes a secret (`secretName`, `secretKeyRef`,
  `password_file`, `token_ttl`, `max_token_count`: see _DESCRIPTORS). `checks_passed`,
  `tokens_used` or `tokenizer` are not secret.
- Under a secret key, strings are masked (an empty one, or a bare `${VAR}` / `{{ .x }}`
  template, stays: it shows nothing), booleans and null stay (`password_policy_enabled:
  true`), and numbers are masked only when the key's last word is a secret word
  (`password: 123456`). In a structure under a secret key (`credentials: {...}`) every
  leaf is masked but those under describing keys (`secret: {secretName: x}`).
- Inside every string: private key PEM blocks, URL passwords (everything between `scheme://
  user:` and the last `@` of the URL, so `/` and `@` in a password are covered),
  `Authorization:`/`Proxy-Authorization:` header values to the end of the line (the
  scheme stays), any `Bearer <token>`, Redis
  `requirepass`/`masterauth` (config lines, `--requirepass x`, `CONFIG SET requirepass x`)
  and ACL `>password` rules, and `key=value` / `key: value` / `"key": "value"` /
  `--key value` pairs whose key is secret by the rule above (libpq conninfo `password=...`,
  JAAS `password="..."`, `PGPASSWORD=...`, a JSON object inside a string).
Values become plain JSON types (models dumped, paths and other objects as redacted text,
non-finite numbers as strings), so every journal line is standard JSON.
"""

from __future__ import annotations

import itertools
import math
import re
from enum import Enum
from pathlib import Path
from typing import Any

MASK = "***"

_WORDS = frozenset({
    "password", "passwd", "pwd", "pass", "passphrase", "secret", "token", "apikey",
    "credential", "credentials", "dsn", "authorization", "privatekey", "requirepass",
    "masterauth", "accesskey",
})
_SUFFIXES = ("password", "passwd", "secret", "token")  # PGPASSWORD, clientSecret, authToken
# A key ending with one of these names or describes a secret; its value is not one.
_DESCRIPTORS = frozenset({
    "name", "names", "ref", "reference", "file", "path", "dir", "mode", "store", "kind",
    "type", "policy", "enabled", "disabled", "required", "length", "count", "size", "version",
    "ttl", "expiry", "expires", "header", "field", "env", "used", "format", "algorithm",
    "rotation", "source", "endpoint", "fingerprint", "public",
})
_TEMPLATE = re.compile(r"\$\{[A-Za-z_][\w:-]*\}|\{\{[^{}]*\}\}")  # ${PASSWORD}, {{ .password }}
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_ENV_SECRET = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|API_?KEY")
_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")
_LITERAL = re.compile(r"(?:true|false|null|none|-?\d+(?:\.\d+)?)", re.I)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
# An argv element after which the next one is a secret: --password, --requirepass, requirepass
_FLAG = re.compile(r"--?(?P<key>[A-Za-z][\w.-]*)|(?P<directive>requirepass|masterauth)", re.I)


def _words(key: str) -> list[str]:
    return [w.lower() for w in _SPLIT.split(key) if w]


def _is_secret_word(word: str) -> bool:
    return word in _WORDS or word.endswith(_SUFFIXES)


def _describes(key: str) -> bool:
    words = _words(key)
    return bool(words) and words[-1] in _DESCRIPTORS


def is_secret_key(key: str) -> bool:
    words = _words(key)
    if not words or words[-1] in _DESCRIPTORS:
        return False
    if _ENV_NAME.fullmatch(key) and _ENV_SECRET.search(key):
        return True
    pairs = [a + b for a, b in itertools.pairwise(words)]
    return any(_is_secret_word(w) for w in words) or any(p in _WORDS for p in pairs)


def _masks_number(key: str) -> bool:
    """Numbers are secret only under a key whose last word (or last two) is a secret word."""
    words = _words(key)
    return bool(words) and (_is_secret_word(words[-1]) or "".join(words[-2:]) in _WORDS)


# --- inside strings ---------------------------------------------------------------------

_PEM = re.compile(r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY-----.*?"
                  r"(?:-----END (?P=kind)PRIVATE KEY-----|\Z)", re.S)
# A URL's password runs to the LAST `@` of the URL, so `/` and `@` in it are covered (the
# URL is matched whole and split by _url: a regex looking for that `@` would backtrack).
_URL = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s\"'<>]*:)(?P<rest>[^\s\"]*)", re.I)
_HEADER = re.compile(r"(?P<head>\b(?:proxy-)?authorization\s*[\"']?\s*[:=][ \t]*"
                     r"(?:(?:Bearer|Basic|Digest|Token|Negotiate|NTLM)[ \t]+)?)"
                     r"(?P<value>\\?\"(?:[^\"\\]|\\.)*?\\?\"|'[^'\n]*'|[^\r\n\"'\\]+"
                     r"|[^\r\n]+)", re.I)
_BEARER = re.compile(r"(?P<head>\bBearer[ \t]+)(?P<value>[^\s\"'\\]+)")
# A quoted value ends where a token can: else it is no quoted value (`"ab"cd` is masked whole)
_END = r"(?=[\s,;})\]\\]|$)"
_DIRECTIVE = re.compile(r"(?P<head>(?<![\w-])(?:--)?(?:requirepass|masterauth)"
                        r"(?:[ \t]+|[ \t]*=[ \t]*))"
                        r"(?P<value>(?:\"(?:[^\"\\]|\\.)*\"|'[^']*')" + _END + r"|[^\s\"']+|\S+)",
                        re.I)
# An argv shown as a Python list (CalledProcessError): '--requirepass', 'x'. The value is
# only looked ahead at, so it can be the next match's flag.
_ARGV_REPR = re.compile(r"(?P<q>[\"'])(?P<flag>--?[A-Za-z_][\w.-]*|requirepass|masterauth)"
                        r"(?P=q),[ \t]*(?=(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"))",
                        re.I)
_HEADERS = ("authorization", "proxy-authorization")
# `credentials: {...}` / `"token": [...]` inside a string: the whole block is masked.
_BLOCK = re.compile(r"(?<![\w.-])(?P<q>\\?[\"']?)(?P<key>[A-Za-z_][\w.-]*)(?P=q)"
                    r"\s*[:=]\s*[{\[](?!\{)")
_INNER_KEY = re.compile(r"(?<![\w.-])(?P<key>[A-Za-z_][\w.-]*)[:=]")
_MAX_DEPTH = 4
_ACL = re.compile(r"^(?P<head>\s*(?:ACL\s+SETUSER|user)\s+\S+)(?P<rest>[^\n]*)", re.I | re.M)
_ACL_PASS = re.compile(r"(?<=\s)[>#<!]\S+")
# key=value, key: value, "key": "value", --key value; the key is judged by is_secret_key.
_PAIR = re.compile(
    r"(?P<head>(?<![\w.-])(?P<opt>--)?(?P<q>\\?[\"']?)(?P<key>[A-Za-z_][\w.-]*)(?P=q)"
    r"(?(opt)(?:[ \t]*=[ \t]*|[ \t]+)|\s*[:=]\s*))"
    r"(?P<value>(?P<quoted>\\\"(?:[^\"\\]|\\[^\"])*\\\"|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')"
    + _END +
    r"|\$\{[A-Za-z_][\w:-]*\}|\{\{[^{}]*\}\}|[^\s\"'{\[][^\s\"']*|\S+)")


def _pair(m: re.Match[str], depth: int) -> str:
    key, value = m["key"], m["value"]
    quoted = m["quoted"] is not None
    q = ('\\"' if value.startswith('\\"') else value[0]) if quoted else ""
    inner = value[len(q):len(value) - len(q)]
    if not is_secret_key(key) or key.lower() in _HEADERS:
        # Not secret (or a header _HEADER masked, keeping its scheme), but what the value
        # holds may be: `'sasl.jaas.config': '... password="x";'`, `opts=password=x`.
        if not quoted:
            return f"{m['head']}{_nested(value)}"
        if depth >= _MAX_DEPTH:
            return f"{m['head']}{q}{MASK}{q}"  # quotes nested this deep: fail closed
        return f"{m['head']}{q}{_redact_text(inner, depth + 1)}{q}"
    if quoted:  # keep the quotes, mask what they hold
        return m[0] if _shows_nothing(inner) else f"{m['head']}{q}{MASK}{q}"
    if _TEMPLATE.fullmatch(value):
        return m[0]
    if _LITERAL.fullmatch(value) and not (_NUMBER.fullmatch(value) and _masks_number(key)):
        return m[0]  # password_enabled=true, max_token_count=5
    return f"{m['head']}{MASK}"


def _url(m: re.Match[str]) -> str:
    at = m["rest"].rfind("@")
    return m[0] if at < 0 else f"{m['head']}{MASK}{m['rest'][at:]}"


def _shows_nothing(value: str) -> bool:
    """An empty value or a bare template (`${PASSWORD}`) reveals no secret."""
    return not value or _TEMPLATE.fullmatch(value) is not None


def _quoted_mask(m: re.Match[str]) -> str:
    value = m["value"]
    if value[0] in "\"'\\":
        q = '\\"' if value.startswith('\\"') else value[0]
        return f"{m['head']}{q}{MASK}{q}"
    return f"{m['head']}{MASK}"


def _mask_argv_repr(text: str) -> str:
    spans = [m.span("value") for m in _ARGV_REPR.finditer(text) if _secret_flag(m["flag"])]
    for start, end in reversed(spans):
        text = f"{text[:start]}{text[start]}{MASK}{text[start]}{text[end:]}"
    return text


def _nested(value: str) -> str:
    """An unquoted value holding a secret pair of its own: `opts=password=x`."""
    for k in _INNER_KEY.finditer(value):
        if is_secret_key(k["key"]) and k.end() < len(value):
            return value[:k.end()] + MASK
    return value


def _mask_blocks(text: str) -> str:
    out, pos = [], 0
    for m in _BLOCK.finditer(text):
        if m.start() < pos or not is_secret_key(m["key"]):
            continue
        close = _closing(text, m.end() - 1)
        out.append(text[pos:m.end()] + MASK)
        pos = close  # the closing bracket stays; an unbalanced block is masked to the end
    return "".join(out) + text[pos:]


def _closing(text: str, start: int) -> int:
    """The bracket closing the one at `start`, skipping quoted strings."""
    depth, quote, i = 0, "", start
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(text)


def redact_text(text: str) -> str:
    return _redact_text(text, 0)


def _redact_text(text: str, depth: int) -> str:
    text = _PEM.sub(lambda m: f"-----BEGIN {m['kind']}PRIVATE KEY-----{MASK}"
                    f"-----END {m['kind']}PRIVATE KEY-----", text)
    text = _URL.sub(_url, text)
    text = _HEADER.sub(_quoted_mask, text)
    text = _BEARER.sub(_quoted_mask, text)
    text = _DIRECTIVE.sub(_quoted_mask, text)
    text = _mask_argv_repr(text)
    text = _ACL.sub(lambda m: m["head"] + _ACL_PASS.sub(MASK, m["rest"]), text)
    text = _mask_blocks(text)
    return _PAIR.sub(lambda m: _pair(m, depth), text)


# --- structured values ------------------------------------------------------------------

def _under_secret(value: Any, key: str) -> Any:
    """A value held by a secret key: every string and (per the rule) number is masked."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return MASK if _masks_number(key) else redact(value)
    if isinstance(value, dict):
        return {redact_text(str(k)): _under_secret_item(str(k), v, key)
                for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_under_secret(v, key) for v in value]
    plain = _plain(value)
    if isinstance(plain, str):
        return plain if _shows_nothing(plain) else MASK
    return _under_secret(plain, key)


def _under_secret_item(child: str, value: Any, key: str) -> Any:
    if _describes(child):
        return redact(value, child)  # secret: {secretName: oms-tls, defaultMode: 288}
    return _under_secret(value, child if is_secret_key(child) else key)


def _plain(value: Any) -> Any:
    """Any other object as JSON-ready data (dumped model, decoded bytes, or its text)."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _secret_flag(value: Any) -> bool:
    m = _FLAG.fullmatch(value) if isinstance(value, str) else None
    return m is not None and (m["directive"] is not None or is_secret_key(m["key"]))


def _redact_argv(items: list[Any]) -> list[Any]:
    """A list, where an element after a secret flag (`--password`, `requirepass`) is masked:
    command lines are often journaled as argv."""
    out = []
    for i, item in enumerate(items):
        after_flag = i > 0 and _secret_flag(items[i - 1]) and isinstance(item, str)
        out.append(_under_secret(item, "secret") if after_flag else redact(item))
    return out


def redact(value: Any, key: str = "") -> Any:
    if key and is_secret_key(key):
        return _under_secret(value, key)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # "inf": JSON has no Infinity
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {redact_text(str(k)): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return _redact_argv(list(value))
    if isinstance(value, set | frozenset):
        return sorted((redact(v) for v in value), key=str)
    return redact(_plain(value))

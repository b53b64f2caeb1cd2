"""Parsers of the servers' own config formats, as written into ConfigMaps: each setting with
the 1-based line of the text it is on (ConfigFile.line maps that to the manifest)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    value: str
    line: int  # 1-based, in the config text


@dataclass(frozen=True)
class Directive:
    """One line of a Redis-style config: `name arg arg...`."""

    name: str
    args: list[str]
    line: int


def redis_conf(text: str) -> list[Directive]:
    """redis.conf / sentinel.conf: `directive args...`, `#` comments, quoted arguments;
    names lowercased, in file order (later ones win, `save` lines add up)."""
    out: list[Directive] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        if words:
            out.append(Directive(words[0].lower(), words[1:], n))
    return out


_PROP_SEP = re.compile(r"\s*[=:]\s*|\s+")


def properties(text: str) -> dict[str, Setting]:
    """Java properties (server.properties): `key=value`, `key: value` or `key value`; `#`
    and `!` comments; a trailing backslash continues the line."""
    out: dict[str, Setting] = {}
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        start, line = n + 1, lines[n].strip()
        while line.endswith("\\") and n + 1 < len(lines):
            n += 1
            line = line[:-1] + lines[n].strip()
        n += 1
        if not line or line[0] in "#!":
            continue
        parts = _PROP_SEP.split(line, maxsplit=1)
        out[parts[0]] = Setting(parts[1].strip() if len(parts) > 1 else "", start)
    return out


_PG_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(?:=\s*|\s+)(.*)$")


def _pg_value(rest: str) -> str:
    rest = rest.strip()
    if rest.startswith("'"):
        m = re.match(r"'((?:[^']|'')*)'", rest)
        return m.group(1).replace("''", "'") if m else rest.strip("'")
    return rest.split("#", 1)[0].strip()


def pg_conf(text: str) -> dict[str, Setting]:
    """postgresql.conf: `name = value` (or `name value`), quoted values, `#` comments;
    names lowercased, the last one wins."""
    out: dict[str, Setting] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.lstrip().startswith("#"):
            continue
        m = _PG_LINE.match(raw)
        if m:
            out[m.group(1).lower()] = Setting(_pg_value(m.group(2)), n)
    return out


_NATS_COMMENT = re.compile(r"(^|\s)(#|//).*$")
_NATS_TOKEN = re.compile(r"\{|\}|\[|\]|[^{}\[\],;]+")
_NATS_PAIR = re.compile(r"^\s*([\w.\-$]+)\s*(?::|=|\s)\s*(.*?)\s*[,;]?\s*$")


def nats_conf(text: str) -> dict[str, Setting]:
    """nats-server configuration: `key: value` / `key = value` / `key value`, blocks
    `key { ... }`, arrays `[ ... ]` (skipped), `#` and `//` comments. Keys are flattened to
    lowercased dotted paths (`jetstream.store_dir`); a block key alone is set to "{}"."""
    out: dict[str, Setting] = {}
    path: list[str] = []
    depth_array = 0
    pending: str | None = None  # a key waiting for its `{`
    for n, raw in enumerate(text.splitlines(), 1):
        line = _NATS_COMMENT.sub("", raw)
        for token in _NATS_TOKEN.findall(line):
            if depth_array:
                depth_array += {"[": 1, "]": -1}.get(token, 0)
                continue
            if token == "[":
                depth_array, pending = 1, None
            elif token == "{":
                key = pending or "_"
                path.append(key)
                out[".".join(path)] = Setting("{}", n)
                pending = None
            elif token == "}":
                if path:
                    path.pop()
            elif token.strip():
                pending = _nats_pair(token, path, n, out)
    return out


def _nats_pair(token: str, path: list[str], n: int, out: dict[str, Setting]) -> str | None:
    """Records `key value`; returns the key when the value is still to come (a block)."""
    text = token.strip().rstrip(",;").strip()
    m = _NATS_PAIR.match(text)
    if m is None or not m.group(2):
        key = text.rstrip(":=").strip().lower()
        return key or None
    key, value = m.group(1).lower(), m.group(2).strip().strip("\"'")
    out[".".join([*path, key])] = Setting(value, n)
    return None

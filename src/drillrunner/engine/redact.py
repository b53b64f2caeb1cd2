"""Secrets never reach the journal: values under secret-looking keys and credentials inside
strings (DSN passwords, `password=...`) are replaced before anything is written. Non-finite
numbers become strings, so every journal line is standard JSON."""

from __future__ import annotations

import math
import re
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(r"pass(word)?|secret|token|credential|api[_-]?key|dsn", re.I)
_URL_CRED = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@", re.I)
_KV_CRED = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd|token|secret)\s*[=:]\s*)(?:'[^']*'|\"[^\"]*\"|\S+)", re.I
)


def redact_text(text: str) -> str:
    text = _URL_CRED.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    return _KV_CRED.sub(lambda m: f"{m['key']}{MASK}", text)


def redact(value: Any, key: str = "") -> Any:
    if key and _SECRET_KEY.search(key) and isinstance(value, str | bytes | int | float):
        return MASK
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "inf": JSON has no Infinity
    return value

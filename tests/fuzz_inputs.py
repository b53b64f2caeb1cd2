"""Mutations of valid scenario and drill files, shared by tests/unit/test_fuzz_validate.py
(driven by hypothesis) and bench/fuzz_validate.py (driven by a seeded random.Random)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SEEDS = sorted([*ROOT.glob("scenarios/*.yaml"), *ROOT.glob("drills/*.yaml")])
ODD_VALUES: list[Any] = [None, True, 0, -1, 2**70, 1.5e308, float("nan"), "", "x" * 300,
                         "10 parsecs", "-5s", "0/s", "1e999/s", [], [[]], {}, {"a": {"b": []}},
                         "C99-x", "é\u202e", "\x00", "*alias", "!!python/object:os.system",
                         "2024-01-01", "0x1F", "~", "all", "none"]


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into nested dicts/lists."""
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path[:-1]:
        data = data[p]
    return data


def _structural(rng: random.Random, text: str) -> bytes:
    # Only on texts PyYAML loads quickly and that expand to no more than they show (an alias
    # bomb loaded here would blow up the fuzzer itself, not the code under test).
    if len(text) > 65536 or "*" in text or text.count("[") + text.count("{") > 300:
        return _textual(rng, text)
    data = yaml.safe_load(text)
    paths = [p for p in _paths(data) if p]
    op = rng.choice(["delete", "retype", "unknown", "nest", "swap", "wrap"])
    path = rng.choice(paths)
    parent = _parent(data, path)
    key = path[-1]
    if op == "delete":
        del parent[key]
    elif op == "retype":
        parent[key] = rng.choice(ODD_VALUES)
    elif op == "unknown" and isinstance(parent, dict):
        parent[rng.choice(["extra", "Kind", "stepz", "after", "args", "tolerance", "1"])] = (
            rng.choice(ODD_VALUES))
    elif op == "nest":
        parent[key] = _deep(rng.randint(50, 3000), rng)
    elif op == "swap":
        other = rng.choice(paths)
        parent[key] = _parent(data, other)[other[-1]]
    else:
        parent[key] = [parent[key]] if rng.random() < 0.5 else {"wrapped": parent[key]}
    try:
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode()
    except (yaml.YAMLError, RecursionError):
        return text.encode()


def _deep(depth: int, rng: random.Random) -> Any:
    out: Any = rng.choice(ODD_VALUES[:4])
    for _ in range(depth):
        out = [out] if rng.random() < 0.5 else {"k": out}
    return out


def _textual(rng: random.Random, text: str) -> bytes:
    raw = text.encode()
    lines = text.splitlines(keepends=True)
    op = rng.choice(["dup_line", "drop_line", "indent", "truncate", "bytes", "bad_utf8",
                     "alias_bomb", "deep_flow", "huge", "random", "tab", "anchor", "doc"])
    if op == "dup_line" and lines:  # a duplicated key
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return "".join(lines).encode()
    if op == "drop_line" and lines:
        del lines[rng.randrange(len(lines))]
        return "".join(lines).encode()
    if op == "indent" and lines:
        i = rng.randrange(len(lines))
        lines[i] = " " * rng.randint(1, 7) + lines[i]
        return "".join(lines).encode()
    if op == "truncate":
        return raw[: rng.randrange(len(raw) + 1)]
    if op == "bytes":
        b = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if op == "bad_utf8":
        i = rng.randrange(len(raw) + 1)
        return raw[:i] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88"]) + raw[i:]
    if op == "alias_bomb":
        n = rng.randint(5, 12)
        bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"a{i}: &a{i} [{', '.join(f'*a{i - 1}' for _ in range(9))}]\n" for i in range(1, n))
        return (bomb + text).encode() if rng.random() < 0.5 else (text + bomb).encode()
    if op == "deep_flow":
        d = rng.randint(100, 20000)
        return (text + "extra: " + "[" * d + "]" * d + "\n").encode()
    if op == "huge":
        return raw + b"# " + b"x" * rng.choice([1024 * 1024, 2 * 1024 * 1024]) + b"\n"
    if op == "random":
        return rng.randbytes(rng.randint(0, 4096))
    if op == "tab" and lines:
        i = rng.randrange(len(lines))
        lines[i] = "\t" + lines[i]
        return "".join(lines).encode()
    if op == "anchor":
        return text.replace("metadata:", "metadata: &m", 1).replace(
            "apiVersion:", "x: *m\napiVersion:", 1).encode()
    if op == "doc":
        return (text + "\n---\n" + text).encode()
    return raw


MUTATORS: list[Callable[[random.Random, str], bytes]] = [_structural, _textual]


def mutated(rng: random.Random) -> bytes:
    """One mutated file: one to three mutations of a randomly chosen valid file."""
    text = rng.choice(SEEDS).read_text()
    out = text.encode()
    for _ in range(rng.randint(1, 3)):
        try:
            current = out.decode()
        except UnicodeDecodeError:
            return out  # no further text-level mutation of invalid UTF-8
        try:
            out = rng.choice(MUTATORS)(rng, current)
        except (yaml.YAMLError, TypeError, IndexError, KeyError, RecursionError, ValueError):
            out = _textual(rng, current)
    return out

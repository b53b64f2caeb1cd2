"""etcd's v3 API through its JSON gateway (POST /v3/...), with httpx: short timeouts and no
retries, so an outage shows at once. Keys and values travel base64-encoded."""

from __future__ import annotations

import base64
from typing import Any

from drillrunner.targets.base import MemberRef

TIMEOUT = 0.5


class Unreachable(Exception):
    """The member did not answer (refused, or no answer in time)."""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def call(member: MemberRef, path: str, body: dict[str, Any], timeout: float = TIMEOUT
         ) -> dict[str, Any]:
    """POST /v3/<path>; Unreachable if the member does not answer, RuntimeError if it
    answers with an error."""
    import httpx

    try:
        resp = httpx.post(f"http://{member.host}:{member.port}/v3/{path}", json=body,
                          timeout=timeout)
    except httpx.TimeoutException as exc:
        raise TimeoutError(f"{member.name}: no answer within {timeout:g}s") from exc
    except httpx.TransportError as exc:
        raise Unreachable(f"{member.name}: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise RuntimeError(f"{member.name}: HTTP {resp.status_code}: {resp.text[:200]}")
    data: dict[str, Any] = resp.json()
    return data


def status(member: MemberRef, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Maintenance status: this member's id (header.member_id), the leader it follows."""
    return call(member, "maintenance/status", {}, timeout)


def put(member: MemberRef, key: str, value: str, timeout: float = TIMEOUT) -> None:
    call(member, "kv/put", {"key": b64(key), "value": b64(value)}, timeout)


def get_prefix(member: MemberRef, prefix: str, timeout: float = 5.0) -> dict[str, str]:
    """Every key under `prefix` with its value: a linearizable read (needs a quorum)."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    data = call(member, "kv/range", {"key": b64(prefix), "range_end": b64(end)}, timeout)
    return {unb64(kv["key"]): unb64(kv.get("value", "")) for kv in data.get("kvs", [])}


def quorum_read(member: MemberRef, timeout: float = TIMEOUT) -> int:
    """A linearizable read through `member`: answers only while the cluster has a quorum
    (a serializable read would answer from a lone member). Returns the revision."""
    data = call(member, "kv/range", {"key": b64("drill/quorum-probe")}, timeout)
    return int(data.get("header", {}).get("revision", 0))


def delete_prefix(member: MemberRef, prefix: str, timeout: float = 5.0) -> int:
    """Delete every key under `prefix`; returns how many were deleted."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    data = call(member, "kv/deleterange", {"key": b64(prefix), "range_end": b64(end)}, timeout)
    return int(data.get("deleted", 0))

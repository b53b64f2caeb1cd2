"""Patroni, the HA manager of the PostgreSQL members: its configuration and its REST API.

Each standing member runs one Patroni, which starts, stops, promotes and rewinds its
PostgreSQL and holds the leader lock in etcd (the DCS). Drill never promotes a member
itself: a failover drill kills or freezes the leader and watches Patroni do it.

The configuration is rendered here as plain data (pure, unit-tested); the local adapter
writes it as YAML and the kind manifests carry the same settings as environment.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

SCOPE = "drill"  # Patroni's cluster name, the key prefix in the DCS
NAMESPACE = "/service/"


class PatroniRole(StrEnum):
    """What a member's REST API says it is (Patroni 3 says master, 4 primary)."""

    LEADER = "leader"
    REPLICA = "replica"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, raw: str | None) -> PatroniRole:
        if raw in ("master", "primary", "leader", "standby_leader"):
            return cls.LEADER
        if raw in ("replica", "sync_standby"):
            return cls.REPLICA
        return cls.UNKNOWN


# Patroni 3.1+ raises smaller values to these (config.py, _validate_and_adjust_timeouts).
MIN_TTL, MIN_LOOP_WAIT, MIN_RETRY_TIMEOUT = 20, 1, 3


@dataclass(frozen=True)
class Timings:
    """The settings that bound an unplanned failover: the leader lock expires `ttl`
    seconds after its last renewal, and a replica notices within one `loop_wait`."""

    ttl: int
    loop_wait: int
    retry_timeout: int

    def predicted_failover(self) -> tuple[float, float]:
        """Earliest and latest promotion after the leader dies, as Patroni's design
        predicts: the lock was renewed 0..loop_wait before the death and lives `ttl`."""
        return (float(self.ttl - self.loop_wait), float(self.ttl + self.loop_wait))

    def problems(self) -> list[str]:
        """Patroni's own rules: its floors (it silently raises a smaller value, so a drill
        would predict the wrong failover time) and loop_wait + 2 * retry_timeout <= ttl."""
        out = [f"{name} ({value}) is below Patroni's minimum of {floor}: Patroni would use "
               f"{floor} and the failover would not take what the settings say"
               for name, value, floor in (("ttl", self.ttl, MIN_TTL),
                                          ("loop_wait", self.loop_wait, MIN_LOOP_WAIT),
                                          ("retry_timeout", self.retry_timeout,
                                           MIN_RETRY_TIMEOUT))
               if value < floor]
        if self.loop_wait + 2 * self.retry_timeout > self.ttl:
            out.append(f"loop_wait ({self.loop_wait}) + 2 x retry_timeout "
                       f"({self.retry_timeout}) exceeds ttl ({self.ttl}): Patroni could lose "
                       "the lock while retrying")
        return out


def dynamic_config(timings: Timings, *, synchronous: bool, maximum_lag: int,
                   failsafe: bool, parameters: dict[str, str]) -> dict[str, Any]:
    """The cluster-wide settings Patroni keeps in the DCS (bootstrap.dcs, or PATCH /config)."""
    return {
        "ttl": timings.ttl,
        "loop_wait": timings.loop_wait,
        "retry_timeout": timings.retry_timeout,
        "maximum_lag_on_failover": maximum_lag,
        "synchronous_mode": synchronous,
        "failsafe_mode": failsafe,
        "postgresql": {
            # A demoted leader rejoins by rewinding its divergent WAL (data checksums are on).
            "use_pg_rewind": True,
            "use_slots": True,
            "parameters": parameters,
        },
    }


def member_config(*, name: str, api_port: int, pg_port: int, etcd_hosts: list[str],
                  data_dir: str, bin_dir: str, sockets: str, pgpass: str,
                  dcs: dict[str, Any], local_parameters: dict[str, str]) -> dict[str, Any]:
    """One member's Patroni configuration file."""
    trust = "trust"  # loopback only, no password anywhere: nothing secret reaches a file
    return {
        "scope": SCOPE,
        "namespace": NAMESPACE,
        "name": name,
        "log": {"level": "INFO"},
        "restapi": {"listen": f"127.0.0.1:{api_port}",
                    "connect_address": f"127.0.0.1:{api_port}"},
        "etcd3": {"hosts": etcd_hosts},
        "bootstrap": {
            "dcs": dcs,
            "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums"],
        },
        "postgresql": {
            "listen": f"127.0.0.1:{pg_port}",
            "connect_address": f"127.0.0.1:{pg_port}",
            "data_dir": data_dir,
            "bin_dir": bin_dir,
            "pgpass": pgpass,
            "authentication": {
                "superuser": {"username": "postgres"},
                "replication": {"username": "postgres"},
                "rewind": {"username": "postgres"},
            },
            "parameters": {"unix_socket_directories": sockets, **local_parameters},
            "pg_hba": [
                "local all all trust",
                f"host all all 127.0.0.1/32 {trust}",
                f"host replication all 127.0.0.1/32 {trust}",
            ],
        },
        "tags": {"nofailover": False, "noloadbalance": False},
    }


# -- REST API -----------------------------------------------------------------------------

class PatroniUnreachable(Exception):
    """The member's REST API did not answer (down, frozen, or starting)."""


def _request(url: str, method: str = "GET", body: dict[str, Any] | None = None,
             timeout: float = 1.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:  # Patroni answers 503 on a replica's /primary
        status, raw = err.code, err.read()
    except (OSError, ValueError) as err:
        raise PatroniUnreachable(f"{url}: {err}") from None
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def status(api: str, timeout: float = 1.0) -> dict[str, Any]:
    """GET /patroni: the member's state, role, timeline and WAL position."""
    code, body = _request(f"{api}/patroni", timeout=timeout)
    if not isinstance(body, dict):
        raise PatroniUnreachable(f"{api}/patroni answered {code} without a status")
    return body


def cluster(api: str, timeout: float = 1.0) -> list[dict[str, Any]]:
    """GET /cluster: every member as the DCS knows it (role leader/sync_standby/replica)."""
    code, body = _request(f"{api}/cluster", timeout=timeout)
    if not isinstance(body, dict) or not isinstance(body.get("members"), list):
        raise PatroniUnreachable(f"{api}/cluster answered {code}")
    return [m for m in body["members"] if isinstance(m, dict)]


def patch_config(api: str, changes: dict[str, Any], timeout: float = 5.0) -> None:
    code, body = _request(f"{api}/config", "PATCH", changes, timeout=timeout)
    if code != 200:
        raise PatroniUnreachable(f"PATCH {api}/config answered {code}: {body}")


def post(api: str, path: str, body: dict[str, Any] | None = None,
         timeout: float = 30.0) -> tuple[int, str]:
    """POST /switchover, /reinitialize, /reload, /restart: the status and Patroni's text."""
    code, answer = _request(f"{api}/{path}", "POST", body or {}, timeout=timeout)
    return code, answer if isinstance(answer, str) else json.dumps(answer)

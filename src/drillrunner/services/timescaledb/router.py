"""The primary's one address for clients that take a single host and port (Feast's SQL
registry and offline store): HAProxy, routing to whichever member Patroni's REST API says
is the primary (GET /primary answers 200 on the leader only), as Patroni's own
documentation sets it up. A member marked down has its sessions shut, so no client keeps
writing to a demoted primary through an open connection.

Drill's own clients and the order service use a libpq multi-host connection string with
target_session_attrs=read-write instead: they need no proxy.
"""

from __future__ import annotations

import shutil

from drillrunner.core.errors import MissingBinary

INSTALL = "install the Debian package haproxy (apt-get install haproxy)"
# Checked every 500 ms, down after 2 failures, up after 1 success: the router follows a
# promotion within about a second of Patroni's.
CHECK = "inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions"


def binary() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin")
    if found is None:
        raise MissingBinary(f"haproxy not found: {INSTALL}")
    return found


def haproxy_config(port: int, members: list[tuple[str, int, int]]) -> str:
    """`members`: (name, PostgreSQL port, Patroni REST port) of each member."""
    servers = "\n".join(f"    server {name} 127.0.0.1:{pg} check port {api}"
                        for name, pg, api in members)
    return f"""# Written by drill; every 'drill stack up' rewrites it.
global
    maxconn 256

defaults
    mode tcp
    timeout connect 1s
    timeout client 30m
    timeout server 30m
    timeout check 1s

listen primary
    bind 127.0.0.1:{port}
    option httpchk GET /primary
    http-check expect status 200
    default-server {CHECK}
{servers}
"""

"""Live roles of the members, as the servers report them."""

from __future__ import annotations

from enum import StrEnum

from drillrunner.core.errors import ActionFailed
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.ops import SERVICE, PostgresOps, pg_ops
from drillrunner.targets.base import MemberRef, Target


class Role(StrEnum):
    PRIMARY = "primary"
    REPLICA = "replica"
    DOWN = "down"
    PAUSED = "paused"


def role_of(target: Target, ops: PostgresOps, member: MemberRef) -> Role:
    import psycopg

    # Paused first: a frozen pod fails its readiness probe, a frozen process does not.
    if ops.is_paused(member.name):
        return Role.PAUSED
    if not target.is_running(member):
        return Role.DOWN
    try:
        in_recovery = sql.fetch_value(ops.dsn(member.name), "SELECT pg_is_in_recovery()")
    except psycopg.Error:
        return Role.DOWN  # running but not answering: starting, crashing or stuck
    return Role.REPLICA if in_recovery else Role.PRIMARY


def member_roles(target: Target) -> dict[str, str]:
    """Live role of every standing member: primary, replica, down or paused. The
    point-in-time restore copy is not one (on kind it is a pod the labels list too)."""
    ops = pg_ops(target)
    temporary = ops.pitr_member().name
    return {m.name: role_of(target, ops, m).value for m in target.members(SERVICE)
            if m.name != temporary}


def the_primary(target: Target) -> MemberRef:
    """The one primary; ActionFailed if there is none or more than one."""
    roles = member_roles(target)
    primaries = [n for n, r in roles.items() if r == Role.PRIMARY]
    if len(primaries) != 1:
        raise ActionFailed(f"expected exactly one TimescaleDB primary, found roles {roles}")
    return target.member(SERVICE, primaries[0])


def settled_primary(target: Target) -> str | None:
    """The one member both PostgreSQL and Patroni call primary, or None while they do not
    agree: a thawed old leader answers read-write until its Patroni demotes it, and what it
    holds is about to be rewound, so reading there would count kept writes as lost."""
    roles = member_roles(target)
    primaries = [n for n, r in roles.items() if r == Role.PRIMARY]
    if len(primaries) != 1:
        return None
    return primaries[0] if pg_ops(target).patroni_roles().get(primaries[0]) == "primary" \
        else None


def replicas(roles: dict[str, str]) -> list[str]:
    return [n for n, r in roles.items() if r == Role.REPLICA]


def status_roles(target: Target) -> dict[str, str]:
    """What `drill stack status` shows: Patroni's role for each member (leader ->
    primary, plus `sync` for the synchronous standby it names), checked against the
    server's own answer; a disagreement is shown, never resolved by guessing."""
    ops = pg_ops(target)
    served = member_roles(target)
    patroni = {str(m.get("name")): str(m.get("role")) for m in ops.cluster_state()}
    out: dict[str, str] = {}
    for name, server in served.items():
        said = patroni.get(name)
        if said is None or server in (Role.DOWN, Role.PAUSED):
            out[name] = server
            continue
        role = Role.PRIMARY if said in ("leader", "standby_leader") else Role.REPLICA
        tokens = [role.value, *(["sync"] if said == "sync_standby" else [])]
        out[name] = "+".join(tokens) if role == server else f"{said} (server: {server})"
    return out

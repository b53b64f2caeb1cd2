"""Sequence-numbered puts, each to the next member in turn (a client with every member's
address, as etcd's own clients are configured), classified for the history:
- refused or no connection: the put certainly did not happen -> a plain exception;
- sent, but no answer in time (no quorum: the proposal waits for one) -> OpUnknown.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from drillrunner.core.actions import workload
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.waiting import poll_until
from drillrunner.engine.context import RunContext
from drillrunner.engine.history import OpUnknown
from drillrunner.services.etcd import client
from drillrunner.services.etcd.topology import SERVICE
from drillrunner.targets.base import MemberRef


class SequencedPuts:
    def __init__(self, members: list[MemberRef], run_key: str, timeout: float) -> None:
        self.members, self.run_key, self.timeout = members, run_key, timeout
        self._next = 0

    def prefix(self) -> str:
        return f"/drill/{self.run_key}/"

    def write(self, seq: int) -> None:
        # Members that refuse at once are skipped within the same op, like a client's
        # endpoint balancer; a member that takes the put and stalls decides the outcome.
        for _ in self.members:
            member = self.members[self._next % len(self.members)]
            self._next += 1
            try:
                client.put(member, f"{self.prefix()}{seq}", str(seq), self.timeout)
                return
            except client.Unreachable:
                continue
            except TimeoutError as exc:
                raise OpUnknown(str(exc)) from None
            except RuntimeError as exc:
                raise ActionFailed(str(exc)) from None
        raise ActionFailed("no etcd member accepts connections")

    def read_back(self, seqs: Collection[int]) -> set[int]:
        """The seqs whose key a quorum read finds (waits for a quorum to read from)."""
        if not seqs:
            return set()

        def read() -> set[int] | None:
            for m in self.members:
                try:
                    found = client.get_prefix(m, self.prefix())
                except (client.Unreachable, TimeoutError, RuntimeError):
                    continue
                return {int(k.rsplit("/", 1)[1]) for k in found} | {-1}
            return None

        got = poll_until(read, timeout=30.0, interval=0.2, what="an etcd quorum to read from")
        return (got - {-1}) & set(seqs)

    def close(self) -> None:
        pass


@workload("etcd.sequenced_puts")
def sequenced_puts(ctx: RunContext, timeout: Duration = 0.5) -> SequencedPuts:
    """PUT /drill/<scenario>-<random>/<seq>, round-robin over the members; `timeout`
    bounds each request."""
    run_key = f"{ctx.scenario}-{uuid.uuid4().hex[:8]}"
    return SequencedPuts(ctx.target.members(SERVICE), run_key, timeout)

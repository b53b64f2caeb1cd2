"""NatsOps on kind: StatefulSet `nats` of deploy/k8s/nats, a 3-node JetStream cluster.

The pod name is the server_name (`server_name: $POD_NAME`), so a stream's cluster leader
names the member. A member's address (MemberRef.port) is the target's port-forward to its
client port 4222; its monitoring port 8222 gets a port-forward of its own, on the target's
forwarder (so it closes with the target). The nodes advertise no client URLs
(`no_advertise`), so clients here only ever use the forwarded addresses.

Wiping a node's JetStream store (`/data/jetstream` on its PVC) needs the node down, but a
deleted pod is recreated at once by its StatefulSet, and scaling down only removes the
highest ordinal. So wipe() holds the node down with the target's hold file
(targets/kind/hold.py: the kill creates `/data/.drill-hold`, the new pod's start waits while
it exists), removes the store in the waiting pod and leaves it held: the undo's start
releases it, and the node starts with an empty store, as a replaced disk would.
"""

from __future__ import annotations

import re

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.services.nats import client
from drillrunner.services.nats.client import StreamSpec
from drillrunner.targets.base import MemberRef, Signal
from drillrunner.targets.kind.deployments import KindDeployment
from drillrunner.targets.pods import HoldState

MONITOR_PORT = 8222
STORE = "/data/jetstream"  # jetstream.store_dir in ConfigMap nats-config
HOLD_ATTEMPTS = 3
RECREATE_TIMEOUT = 120.0
STREAM_REPLICAS = 3  # the drill stream is R3 on kind (the local default; not configurable)
STREAM_TIMEOUT = 60.0
SERVER_COMMS = ("nats-server",)  # PID 1 once the start gate has exec'd the server
_NAME = re.compile(r"^nats-\d+$")


class KindNatsOps(KindDeployment):
    """The driver's NatsOps on the kind target (see the module docstring)."""

    def _check_name(self, name: str) -> None:
        if _NAME.match(name) is None:
            raise StackError(f"nats has no member {name!r}")

    def _ref(self, name: str) -> MemberRef:
        """Enough of a MemberRef to exec in the pod (the target addresses pods by name)."""
        self._check_name(name)
        return MemberRef(service=self.service, name=name, host=name, port=4222)

    # -- NatsOps ------------------------------------------------------------------------

    def servers(self) -> list[MemberRef]:
        return self.members()

    def monitor_port(self, name: str) -> int:
        """The local port forwarded to the pod's 8222 (8222 itself without forwarding)."""
        self._check_name(name)
        forwarder = self.target.forwarder()  # the target's: closed by target.close()
        return forwarder.local_port(name, MONITOR_PORT) if forwarder else MONITOR_PORT

    def stream_spec(self) -> StreamSpec:
        return StreamSpec(replicas=STREAM_REPLICAS)

    def has_data(self, name: str) -> bool:
        """Whether the store on the pod's volume holds anything (asked in the pod: a
        deleted pod cannot be inspected, ActionFailed names it)."""
        out = self.target.sh(self._ref(name),
                             f'[ -n "$(ls -A {STORE} 2>/dev/null)" ] && echo yes || echo no',
                             what=f"looking into {STORE}")
        return out.strip() == "yes"

    def wipe(self, name: str) -> None:
        """Delete the node's JetStream store while the node is held down (module
        docstring); it stays down until its start. Idempotent."""
        ref = self._ref(name)
        self._hold_down(ref)
        self.target.sh(ref, f"rm -rf {STORE}", what=f"wiping {STORE}")

    def _hold_down(self, ref: MemberRef) -> None:
        """Kill the pod (holding it) until its replacement waits held (no nats-server)."""
        for _ in range(HOLD_ATTEMPTS):
            if self.target.hold_state(ref, SERVER_COMMS) is HoldState.HELD:
                return
            self.target.kill(ref, Signal.KILL)
            try:
                found = poll_until(lambda: self.target.hold_state(ref, SERVER_COMMS),
                                   timeout=RECREATE_TIMEOUT, interval=0.5,
                                   what=f"pod {ref.name} to be recreated")
            except WaitTimeout as exc:
                raise ActionFailed(f"{ref.name}: {exc}") from None
            if found is HoldState.HELD:
                return
        raise ActionFailed(
            f"{ref.name}: could not hold the node down to wipe its store: its new pod "
            f"started nats-server {HOLD_ATTEMPTS} times (does it declare its hold file, "
            "annotation drill.dev/hold-file, as in deploy/k8s/nats?)")

    # -- stream -------------------------------------------------------------------------

    def ensure_stream(self) -> str:
        """Create the drill stream or apply its replica count (as the local `up` does):
        "created", "updated" or "unchanged"."""
        urls = [f"nats://{m.host}:{m.port}" for m in self.servers()]
        return poll_until(lambda: client.ensure_stream(urls, self.stream_spec()),
                          timeout=STREAM_TIMEOUT, interval=0.5, retry_on=(Exception,),
                          what="the drill stream to accept its configuration")

    def prepare(self) -> list[str]:
        """What `drill cluster up` should run once the pods are ready: the drill stream."""
        return [f"nats stream {client.STREAM} {self.ensure_stream()}"]

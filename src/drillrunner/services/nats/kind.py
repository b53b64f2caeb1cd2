"""NatsOps on kind: StatefulSet `nats` of deploy/k8s/nats, a 3-node JetStream cluster.

The pod name is the server_name (`server_name: $POD_NAME`), so a stream's cluster leader
names the member. A member's address (MemberRef.port) is the target's port-forward to its
client port 4222; its monitoring port 8222 gets a port-forward of its own, on the target's
forwarder (so it closes with the target). The nodes advertise no client URLs
(`no_advertise`), so clients here only ever use the forwarded addresses.

Wiping a node's JetStream store (`/data/jetstream` on its PVC) needs the node down, but a
deleted pod is recreated at once by its StatefulSet, and scaling down only removes the
highest ordinal. So the manifest gates nats-server's start: a pod whose name is a key of
ConfigMap `nats-hold` (value: a deadline, epoch seconds) waits before exec'ing the server.
wipe() sets the key, deletes the pod until its replacement is seen waiting (PID 1 still the
shell, no nats-server), removes the store in that pod, then releases it
(`/data/.drill-release`) and deletes the key: the node starts again with an empty store,
as a replaced disk would. The deadline (60 s) bounds the hold if the drill dies midway.
"""

from __future__ import annotations

import re
import time

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.services.nats import client
from drillrunner.services.nats.client import StreamSpec
from drillrunner.targets.base import MemberRef, Signal
from drillrunner.targets.kind.apis import http_status
from drillrunner.targets.kind.deployments import KindDeployment

MONITOR_PORT = 8222
STORE = "/data/jetstream"  # jetstream.store_dir in ConfigMap nats-config
RELEASE = "/data/.drill-release"  # the gate in the manifest's command waits for it
HOLD_CONFIGMAP = "nats-hold"
HOLD_SECONDS = 60  # below the liveness probe's ~70 s: a held pod is never restarted
HOLD_ATTEMPTS = 3
RECREATE_TIMEOUT = 120.0
STREAM_REPLICAS = 3  # the drill stream is R3 on kind (the local default; not configurable)
STREAM_TIMEOUT = 60.0
WAITING = "sh"  # /proc/1/comm of a pod held by the gate (nats-server once released)
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
        forwarder = self.target._forwarder  # the target's: closed by target.close()
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
        docstring); the node then starts with an empty store. Idempotent."""
        ref = self._ref(name)
        deadline = int(time.time()) + HOLD_SECONDS  # kind nodes share the host's clock
        self.target.set_config(HOLD_CONFIGMAP, name, str(deadline))
        try:
            self._hold_down(ref)
            self.target.sh(ref, f"rm -rf {STORE} && touch {RELEASE}",
                           what=f"wiping {STORE}")
        finally:
            self.target.restore_config(HOLD_CONFIGMAP, name, None)

    def _pid1(self, ref: MemberRef) -> str | None:
        """The command name of the pod's PID 1, or None while no container runs."""
        try:
            result = self.target.exec(ref, ["cat", "/proc/1/comm"], timeout=10.0)
        except ActionFailed:
            return None  # no pod (yet)
        except Exception as exc:
            if http_status(exc) is not None:
                return None  # the API refused the exec: container not started yet
            raise
        if result.returncode != 0:
            return None
        return result.stdout.strip() or None

    def _hold_down(self, ref: MemberRef) -> None:
        """Delete the pod until its replacement waits in the gate (no nats-server)."""
        for _ in range(HOLD_ATTEMPTS):
            if self._pid1(ref) == WAITING:
                return
            self.target.kill(ref, Signal.KILL)
            try:
                found = poll_until(lambda: self._pid1(ref), timeout=RECREATE_TIMEOUT,
                                   interval=0.5, what=f"pod {ref.name} to be recreated")
            except WaitTimeout as exc:
                raise ActionFailed(f"{ref.name}: {exc}") from None
            if found == WAITING:
                return
        raise ActionFailed(
            f"{ref.name}: could not hold the node down to wipe its store: its new pod "
            f"started nats-server {HOLD_ATTEMPTS} times (is ConfigMap {HOLD_CONFIGMAP} "
            "mounted at /etc/nats-hold, as in deploy/k8s/nats?)")

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

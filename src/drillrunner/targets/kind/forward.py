"""Service addresses from the host: one local listener per member, forwarding each
accepted connection to the pod through the API server (kubernetes.stream.portforward).

The listener is bound when the member is first listed, so its MemberRef (127.0.0.1:port)
stays valid while the pod is killed and recreated under the same name: the pod is
looked up by name for every new connection. Nothing is opened towards the cluster until
a client connects, so listing members works without a kubelet (e.g. kwok nodes).
"""

from __future__ import annotations

import socket
import threading
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

BUFFER = 65536


def _pump(src: Any, dst: Any) -> None:
    with suppress(OSError):
        while data := src.recv(BUFFER):
            dst.sendall(data)
    for s in (src, dst):
        with suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


@dataclass
class _Listener:
    sock: socket.socket
    thread: threading.Thread


@dataclass
class PortForwarder:
    """Local 127.0.0.1 ports forwarded to (pod, port) in one namespace."""

    core: Any  # CoreV1Api
    namespace: str
    _listeners: dict[tuple[str, int], _Listener] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closed: threading.Event = field(default_factory=threading.Event)

    def local_port(self, pod: str, port: int, bind_to: int = 0) -> int:
        """The local port forwarding to `pod`:`port` (bound on first use, to `bind_to` if
        given, else to a free port). Raises OSError when `bind_to` is taken."""
        with self._lock:
            key = (pod, port)
            if key not in self._listeners:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT only
                try:
                    sock.bind(("127.0.0.1", bind_to))
                except OSError:
                    sock.close()
                    raise
                sock.listen(64)
                thread = threading.Thread(target=self._accept, args=(sock, pod, port),
                                          name=f"forward-{pod}-{port}", daemon=True)
                self._listeners[key] = _Listener(sock, thread)
                thread.start()
            return int(self._listeners[key].sock.getsockname()[1])

    def _accept(self, sock: socket.socket, pod: str, port: int) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn, pod, port), daemon=True).start()

    def _serve(self, conn: socket.socket, pod: str, port: int) -> None:
        from kubernetes.stream import portforward

        from drillrunner.targets.kind.apis import own_client

        try:
            with own_client(self.core) as core:  # never swap call_api on the shared client
                pf = portforward(core.connect_get_namespaced_pod_portforward, pod,
                                 self.namespace, ports=str(port))
            remote = pf.socket(port)
            remote.setblocking(True)
        except Exception:
            conn.close()  # the pod is gone or not ready: the client sees a closed connection
            return
        threading.Thread(target=_pump, args=(remote, conn), daemon=True).start()
        _pump(conn, remote)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            for listener in self._listeners.values():
                with suppress(OSError):
                    listener.sock.close()
            self._listeners.clear()

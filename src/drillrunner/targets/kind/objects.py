"""ConfigMaps, Secrets and replica counts in the namespace, and a member's configuration
for the evidence. Every change is undoable: `set_config` returns the previous value for
`restore_config`, `scale` the previous count."""

from __future__ import annotations

import base64

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.targets.base import MemberRef
from drillrunner.targets.kind.apis import http_status
from drillrunner.targets.kind.lookup import PodLookup


class ClusterObjects(PodLookup):
    def secret_value(self, name: str, key: str) -> str:
        """One key of a Secret in the namespace (for connecting; never logged)."""
        try:
            secret = self.apis.core.read_namespaced_secret(name, self.namespace)
        except Exception as exc:
            if http_status(exc) == 404:
                raise StackError(f"no Secret {name} in namespace {self.namespace}") from None
            raise
        value = (secret.data or {}).get(key)
        if value is None:
            raise StackError(f"Secret {name} has no key {key!r}")
        return base64.b64decode(value).decode()

    def scale(self, statefulset: str, replicas: int) -> int:
        """Set a StatefulSet's replicas; returns the previous count (for the undo)."""
        sts = self.apis.apps.read_namespaced_stateful_set(statefulset, self.namespace)
        previous = int(sts.spec.replicas or 0)
        if previous != replicas:
            self.apis.apps.patch_namespaced_stateful_set(
                statefulset, self.namespace, {"spec": {"replicas": replicas}})
        return previous

    def member_config(self, member: MemberRef) -> dict[str, str]:
        """Each container's command line and every ConfigMap the pod uses (never Secrets)."""
        pod = self._pod(member.name)
        if pod is None:
            return {"pod": "(no pod at collection time)\n"}
        out: dict[str, str] = {}
        names: list[str] = []
        for c in pod.spec.containers:
            out[f"{c.name}.argv"] = " ".join([*(c.command or []), *(c.args or [])]) + "\n"
            names += [e.config_map_ref.name for e in (c.env_from or []) if e.config_map_ref]
            names += [e.value_from.config_map_key_ref.name for e in (c.env or [])
                      if e.value_from and e.value_from.config_map_key_ref]
        names += [v.config_map.name for v in (pod.spec.volumes or []) if v.config_map]
        for name in dict.fromkeys(names):
            for key, value in sorted((self.read_config(name) or {}).items()):
                out[f"{name}.{key}"] = value
        return out

    def read_config(self, configmap: str) -> dict[str, str] | None:
        try:
            cm = self.apis.core.read_namespaced_config_map(configmap, self.namespace)
        except Exception as exc:
            if http_status(exc) == 404:
                return None
            raise
        return dict(cm.data or {})

    def set_config(self, configmap: str, key: str, value: str) -> str | None:
        """Set one ConfigMap key; returns its previous value (None: absent) for
        restore_config. Pods see it when they remount or restart."""
        data = self.read_config(configmap)
        if data is None:
            raise ActionFailed(f"no ConfigMap {configmap} in namespace {self.namespace}")
        self.apis.core.patch_namespaced_config_map(configmap, self.namespace,
                                                   {"data": {key: value}})
        return data.get(key)

    def restore_config(self, configmap: str, key: str, previous: str | None) -> None:
        """Put a key back as it was (delete it if it was absent); idempotent."""
        data = self.read_config(configmap)
        if data is None or data.get(key) == previous:
            return
        self.apis.core.patch_namespaced_config_map(configmap, self.namespace,
                                                   {"data": {key: previous}})

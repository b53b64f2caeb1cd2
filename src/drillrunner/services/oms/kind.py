"""OmsOps on kind: the order service as StatefulSet `oms` (members oms-0, oms-1).

The settings a drill overrides live where the manifests put them: `environment`,
`simulation`, `simulation_guard` and `readiness_checks_dependencies` in ConfigMap
`oms-settings` (laid over oms.yaml; never in Secret `oms-config`, which External Secrets
owns and would re-render at once if patched), the kill-switch default and fail-closed flag
in ConfigMap `oms-kill-switch`, the PostgreSQL breaker in ConfigMap
`oms-circuit-breakers`. The pods read them at start only, so a start with overrides
patches those keys and then (re)starts the pods. The replicas share one configuration: on
kind a member is stopped and started with its siblings (the StatefulSet is scaled to 0 and back).

What drill changed is recorded on the StatefulSet itself, BEFORE it changes anything
(annotation `drill.dev/oms-overrides`: the overrides and the values they replaced, never
the password), so the undo works after a crash of drill too (`drill recover`).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from drillrunner.core.errors import ActionFailed, StackError
from drillrunner.core.waiting import WaitTimeout, monotonic, poll_until
from drillrunner.services.oms.http import get
from drillrunner.services.oms.ops import SERVICE
from drillrunner.targets.base import Signal
from drillrunner.targets.kind.deployments import KindDeployment
from drillrunner.targets.kind.statefulsets import (
    REPLICAS_BEFORE_STOP,
    annotate,
    crashed_exit_code,
    read_statefulset,
    start_statefulset,
    stop_statefulset,
    sts_annotations,
)
from orderservice.config import KILL_SWITCH_KEY

STATEFULSET = "oms"
DEFAULT_REPLICAS = 2  # deploy/k8s/oms/oms.yaml
READY_TIMEOUT = 30.0
RECORD = "drill.dev/oms-overrides"
SETTINGS, SETTINGS_FILE = "oms-settings", "settings.yaml"
SWITCH, SWITCH_FILE = "oms-kill-switch", "kill-switch.yaml"
BREAKERS, BREAKERS_FILE = "oms-circuit-breakers", "circuit-breakers.yaml"
PG_CREDENTIALS, PG_PASSWORD_KEY = "timescaledb-credentials", "oms-password"
PG_DB = PG_USER = "oms"

# setting of the `oms` section -> (its ConfigMap, file key, path in the file)
Where = tuple[str, str, tuple[str, ...]]
FIELDS: dict[str, Where] = {
    "environment": (SETTINGS, SETTINGS_FILE, ("environment",)),
    "simulation": (SETTINGS, SETTINGS_FILE, ("simulation",)),
    "simulation_guard": (SETTINGS, SETTINGS_FILE, ("simulation_guard",)),
    "readiness_checks_dependencies": (SETTINGS, SETTINGS_FILE,
                                      ("readiness_checks_dependencies",)),
    "kill_switch_default": (SWITCH, SWITCH_FILE, ("default",)),
    "kill_switch_fail_closed": (SWITCH, SWITCH_FILE, ("fail_closed",)),
    "circuit_breaker": (BREAKERS, BREAKERS_FILE, ("postgres", "enabled")),
}



# -- yaml documents inside Secret / ConfigMap keys ---------------------------------------

def _get(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(path[-1], None)  # it was absent: the service's default applies
    else:
        node[path[-1]] = value


class KindOmsOps(KindDeployment):
    """OmsOps on kind (see the module docstring)."""

    # -- members and addresses --------------------------------------------------------

    def _check_member(self, member: str) -> None:
        """A member is an ordinal of the StatefulSet, also while it is scaled to 0."""
        sts = read_statefulset(self.target, STATEFULSET)
        remembered = (sts.metadata.annotations or {}).get(REPLICAS_BEFORE_STOP)
        count = max(int(sts.spec.replicas or 0), int(remembered or 0))
        if member not in {f"{STATEFULSET}-{i}" for i in range(count or DEFAULT_REPLICAS)}:
            raise StackError(f"oms has no member {member!r} (StatefulSet {STATEFULSET} "
                             f"in namespace {self.target.namespace})")

    def url(self, member: str) -> str:
        ref = self.target.member(SERVICE, member)
        return f"http://{ref.host}:{ref.port}"

    def _answers(self, member: str) -> bool:
        """/livez answers 200 (the HTTP port is up; readiness is the driver's business)."""
        try:
            return get(f"{self.url(member)}/livez", 0.5).status == 200
        except StackError:
            return False  # not listed: scaled to 0

    def kill_switch_key(self) -> str:
        text = (self.target.read_config(SWITCH) or {}).get(SWITCH_FILE, "")
        doc = yaml.safe_load(text) if text else None
        key = doc.get("redis_key") if isinstance(doc, dict) else None
        return str(key or KILL_SWITCH_KEY)

    def postgres_dsn(self) -> str:
        """Multi-host conninfo over the TimescaleDB members' forwarded ports, as the OMS's
        own role (the orders are in its database); read-write picks the primary."""
        servers = [m for m in self.target.members("timescaledb") if m.kind == "server"]
        if not servers:
            raise ActionFailed("no TimescaleDB pods found for the OMS's database")
        password = self.target.secret_value(PG_CREDENTIALS, PG_PASSWORD_KEY)
        quoted = password.replace("\\", "\\\\").replace("'", "\\'")
        return (f"host={','.join(m.host for m in servers)} "
                f"port={','.join(str(m.port) for m in servers)} dbname={PG_DB} "
                f"user={PG_USER} password='{quoted}' target_session_attrs=read-write "
                "connect_timeout=2")

    # -- settings in the ConfigMaps ----------------------------------------------------

    def _read_file(self, obj: str, key: str) -> dict[str, Any]:
        data = self.target.read_config(obj)
        if data is None or key not in data:
            raise ActionFailed(f"no key {key} in ConfigMap {obj} of namespace "
                               f"{self.target.namespace}")
        doc = yaml.safe_load(data[key]) or {}
        if not isinstance(doc, dict):
            raise ActionFailed(f"{obj}/{key} is not a YAML mapping")
        return doc

    def _write_file(self, obj: str, key: str, doc: dict[str, Any]) -> None:
        self.target.set_config(obj, key, yaml.safe_dump(doc, sort_keys=False))

    def _files(self, settings: list[str]) -> dict[tuple[str, str], list[str]]:
        grouped: dict[tuple[str, str], list[str]] = {}
        for s in settings:
            obj, key, _ = FIELDS[s]
            grouped.setdefault((obj, key), []).append(s)
        return grouped

    def _read_settings(self, settings: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for (obj, key), names in self._files(settings).items():
            doc = self._read_file(obj, key)
            out.update({s: _get(doc, FIELDS[s][2]) for s in names})
        return out

    def _write_settings(self, values: dict[str, Any]) -> bool:
        """Write the values (None: remove the key); True if any file changed."""
        changed = False
        for (obj, key), names in self._files(list(values)).items():
            doc = self._read_file(obj, key)
            before = json.dumps(doc, sort_keys=True, default=str)
            for s in names:
                _set(doc, FIELDS[s][2], values[s])
            if json.dumps(doc, sort_keys=True, default=str) != before:
                self._write_file(obj, key, doc)
                changed = True
        return changed

    @staticmethod
    def _validate(overrides: dict[str, Any] | None) -> dict[str, Any]:
        from pydantic import ValidationError

        from drillrunner.services.oms.spec import OmsSettings

        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(FIELDS))
        if unknown:
            raise ActionFailed(f"the OMS has no setting {', '.join(unknown)} on kind "
                               f"(known: {', '.join(FIELDS)})")
        try:
            valid = OmsSettings.model_validate(overrides)
        except ValidationError as exc:
            raise ActionFailed(f"invalid OMS overrides: {exc.errors()[0]['msg']}") from None
        return valid.model_dump(include=set(overrides))

    def _record(self) -> dict[str, Any]:
        raw = sts_annotations(self.target, STATEFULSET).get(RECORD)
        if not raw:
            return {}
        try:
            record: dict[str, Any] = json.loads(raw)
        except ValueError:
            return {}
        return record

    def _configure(self, wanted: dict[str, Any]) -> bool:
        """Put back what a previous start replaced, then apply `wanted` (its record is
        written before the first change). True if any file changed."""
        changed = False
        previous = self._record().get("previous")
        if isinstance(previous, dict):
            changed = self._write_settings(
                {k: v for k, v in previous.items() if k in FIELDS})
            annotate(self.target, STATEFULSET, {RECORD: None})
        if wanted:
            record = {"overrides": wanted, "previous": self._read_settings(list(wanted))}
            annotate(self.target, STATEFULSET, {RECORD: json.dumps(record, sort_keys=True)})
            changed = self._write_settings(wanted) or changed
        return changed

    # -- OmsOps -----------------------------------------------------------------------

    def running_overrides(self, member: str) -> dict[str, Any]:
        self._check_member(member)
        if not int(read_statefulset(self.target, STATEFULSET).spec.replicas or 0):
            return {}  # stopped: nothing runs with them
        overrides: dict[str, Any] = self._record().get("overrides") or {}
        return overrides

    def start_member(self, member: str, overrides: dict[str, Any] | None = None,
                     timeout: float = READY_TIMEOUT) -> float:
        """Apply the settings, (re)start the pods if they must read them, and wait until
        the member's /livez answers; 0.0 if it already ran with these settings."""
        self._check_member(member)
        wanted = self._validate(overrides)
        running = bool(int(read_statefulset(self.target, STATEFULSET).spec.replicas or 0))
        if running and (self._record().get("overrides") or {}) == wanted \
                and self._answers(member):
            return 0.0
        t0 = monotonic()
        changed = self._configure(wanted)
        if not start_statefulset(self.target, STATEFULSET, DEFAULT_REPLICAS) and changed:
            self._restart_pods()  # running pods read their files at start only
        self._wait_answering(member, timeout)
        return monotonic() - t0

    def _restart_pods(self) -> None:
        for ref in self.members():
            if self.target.pod_exists(ref.name):
                self.target.kill(ref, Signal.TERM)  # the StatefulSet recreates it

    def _wait_answering(self, member: str, timeout: float) -> None:
        def up() -> bool:
            code = crashed_exit_code(self.target, member)
            if code is not None:
                raise StackError(f"{member} exited with code {code} (see its log: "
                                 f"kubectl -n {self.target.namespace} logs {member})")
            return self._answers(member)

        try:
            poll_until(up, timeout=timeout, interval=0.2, what=f"{member} to answer /livez")
        except WaitTimeout as exc:
            raise StackError(str(exc)) from None

    def stop_member(self, member: str) -> None:
        """Scale the StatefulSet to 0 (its pods get TERM); no-op when it is stopped."""
        self._check_member(member)
        stop_statefulset(self.target, STATEFULSET)

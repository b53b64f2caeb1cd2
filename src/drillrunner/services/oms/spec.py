"""The oms service: what drill knows of it, in one place."""

from __future__ import annotations

from typing import ClassVar, Literal

from drillrunner.services.spec import ServiceSettings, ServiceSpec


class OmsSettings(ServiceSettings):
    """The order service"s safety behaviour; each switch-off is a broken variant."""

    service: ClassVar[str] = "oms"
    environment: Literal["production", "staging", "development"] = "staging"
    simulation: bool = False
    simulation_guard: bool = True  # refuse to start in simulation mode in production
    kill_switch_default: Literal["engaged", "disengaged"] = "engaged"
    kill_switch_fail_closed: bool = True  # unreadable kill-switch state -> reject orders
    circuit_breaker: bool = True
    readiness_checks_dependencies: bool = True


SPEC = ServiceSpec(
    name="oms",
    summary=("The order service (the system under test): orders into PostgreSQL behind a circuit "
             "breaker, a kill-switch in Redis, a simulation guard"),
    ports={"oms-0": 60},
    actions=("probes", "faults", "workload", "checks", "killswitch", "orders"),
    local="local:OmsDeployment",
    kind="kind:KindOmsOps",
    settings=OmsSettings,
    depends_on=("timescaledb", "redis"),
    audit="audit",
)

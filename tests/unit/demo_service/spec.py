"""The echo service's spec: one member on port base + 90, a setting, a fault, an adapter."""

from __future__ import annotations

from typing import ClassVar

from drillrunner.services.spec import ServiceSettings, ServiceSpec


class EchoSettings(ServiceSettings):
    service: ClassVar[str] = "echo"
    directory_listing: bool = True


SPEC = ServiceSpec(
    name="echo",
    summary="An HTTP server that serves its own folder",
    ports={"echo-0": 90},
    actions=("faults",),
    local="local:EchoDeployment",
    settings=EchoSettings,
    depends_on=("redis",),
    package="tests.unit.demo_service",
)

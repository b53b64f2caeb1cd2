"""The etcd service: what drill knows of it, in one place."""

from __future__ import annotations

from drillrunner.services.spec import ServiceSpec

SPEC = ServiceSpec(
    name="etcd",
    summary=("etcd: a 3-member Raft cluster, the distributed configuration store an HA "
             "manager such as Patroni keeps its leader lock in"),
    ports={"etcd-0": 70, "etcd-1": 71, "etcd-2": 72,
           "etcd-0-peer": 73, "etcd-1-peer": 74, "etcd-2-peer": 75},
    actions=("probes", "faults", "actions", "workload"),
    local="local:EtcdDeployment",
)

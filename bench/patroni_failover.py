"""Failover RTO under Patroni, beside the window Patroni's own settings predict.

Starts etcd (3 members) and the TimescaleDB tier (2 PostgreSQL members under Patroni) by
drill's own deployment code on --port-base, in a temp folder. Each repetition: drill's
sequenced-insert client writes at --rate through the multi-host connection string, the
leader (Patroni and every PostgreSQL process) is killed with SIGKILL, and the client-view
RTO is measured from the kill until writes succeed again and lastingly. The killed member
then rejoins (Patroni rewinds it) before the next repetition. Also the planned switchover
(`--switchovers`), timed the same way.

    .venv/bin/python bench/patroni_failover.py [--reps 5] [--switchovers 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import summary, write_results
from drillrunner.core.waiting import poll_until
from drillrunner.engine.history import History
from drillrunner.engine.outcome import LASTING_OPS
from drillrunner.engine.recovery import lasting_success, recovery
from drillrunner.engine.schedule import WorkloadThread
from drillrunner.services.etcd.local import EtcdDeployment
from drillrunner.services.timescaledb import sql
from drillrunner.services.timescaledb.local import PostgresDeployment
from drillrunner.services.timescaledb.workload import SequencedWrites
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.base import Signal
from drillrunner.targets.local.supervisor import Supervisor

WORKLOAD = "timescaledb.sequenced_writes"
STABLE = 1.0


def _rejoin(dep: PostgresDeployment, member: str, leader: str) -> None:
    dep.start_member(member)
    poll_until(lambda: sql.streams(dep.dsn(leader), member, True), timeout=60, interval=0.1,
               what=f"{member} to stream from {leader}")
    poll_until(lambda: any(m.get("name") == member and m.get("role") == "sync_standby"
                           for m in dep.cluster_state()),
               timeout=60, interval=0.1, what=f"{member} named sync standby")


def one_rep(dep: PostgresDeployment, rep: int, kind: str, rate: float) -> dict[str, Any]:
    history = History()
    client = SequencedWrites(dep.cluster_dsn(1.0), "bench_patroni",
                             f"{kind}-{rep}-{uuid.uuid4().hex[:8]}", 1.0)
    client.create_table(hypertable=False)
    thread = WorkloadThread(WORKLOAD, client, rate, history, lambda *_a, **_k: None)
    old = dep.leader()
    assert old is not None
    thread.start()
    try:
        t0 = time.monotonic()
        poll_until(lambda: lasting_success(history.ops(), t0, 20, 0.3), timeout=20,
                   interval=0.01, what="warm-up writes")
        t_fault = time.monotonic()
        if kind == "kill":
            dep.kill(old, Signal.KILL)
        else:
            dep.switchover()
        poll_until(lambda: lasting_success(history.ops(), t_fault, LASTING_OPS, STABLE),
                   timeout=90, interval=0.02, what="writes to succeed again")
    finally:
        thread.stop()
        client.close()
    r = recovery(history.ops(), t_fault=t_fault, stable=STABLE, min_ops=LASTING_OPS)
    new = dep.leader()
    assert new is not None and new != old, f"no new leader ({old} -> {new})"
    if kind == "kill":
        _rejoin(dep, old, new)
    else:
        poll_until(lambda: any(m.get("name") == old and m.get("role") == "sync_standby"
                               for m in dep.cluster_state()),
                   timeout=60, interval=0.1, what=f"{old} named sync standby")
    return {"rep": rep, "from": old, "to": new, "rto_s": r.rto_seconds,
            "error_bar_s": r.rto_error_seconds, "outage_observed": r.outage_observed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--switchovers", type=int, default=5)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--port-base", type=int, default=29000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-patroni-") as tmp:
        state = Path(tmp)
        state.chmod(0o755)
        settings = StackSettings(port_base=args.port_base)
        sup = Supervisor(state)
        etcd, dep = EtcdDeployment(settings, state, sup), PostgresDeployment(settings, state, sup)
        try:
            t0 = time.monotonic()
            etcd.up()
            dep.up()
            up_s = time.monotonic() - t0
            kills = [one_rep(dep, i, "kill", args.rate) for i in range(args.reps)]
            switches = [one_rep(dep, i, "switchover", args.rate)
                        for i in range(args.switchovers)]
        finally:
            dep.down()
            etcd.down()
    t = dep.timings()
    low, high = t.predicted_failover()
    data = {
        "settings": {"ttl": t.ttl, "loop_wait": t.loop_wait, "retry_timeout": t.retry_timeout},
        "predicted_failover_s": [low, high],
        "stack_up_s": round(up_s, 3),
        "kill_leader": {"rto": summary([k["rto_s"] for k in kills if k["rto_s"]]),
                        "reps": kills},
        "switchover": {"rto": summary([s["rto_s"] for s in switches if s["rto_s"]]),
                       "reps": switches},
    }
    write_results("patroni_failover", data)
    for name in ("kill_leader", "switchover"):
        s = data[name]["rto"]  # type: ignore[index]
        print(f"{name}: RTO median {s['median']} s, min {s['min']}, max {s['max']} "
              f"(n={s['n']}); Patroni predicts {low:g}..{high:g} s for a kill")
    return 0


if __name__ == "__main__":
    sys.exit(main())

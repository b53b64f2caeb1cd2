"""Accuracy of drill's client-view RTO against a known outage.

A standalone redis-server (started by drill's Supervisor on a free 127.0.0.1 port, state in
a temp folder) is frozen with SIGSTOP of its process group and resumed with SIGCONT exactly
`--outage` seconds later (monotonic clock). A redis-py SET workload driven by the engine's
WorkloadThread records into a History; `recovery(ops, t_fault=stop)` gives the RTO, which
is compared with the true outage (resume - stop, both taken right around os.killpg).

    .venv/bin/python bench/rto_accuracy.py [--reps 10] [--rate 100] [--timeout 0.25]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from _common import free_port, summary, write_results
from drillrunner.engine.history import History, OpStatus, OpUnknown
from drillrunner.engine.recovery import lasting_success, recovery
from drillrunner.engine.schedule import WorkloadThread
from drillrunner.targets.local.supervisor import ProcessSpec, Supervisor
from drillrunner.waiting import poll_until

REDIS_SERVER = "/usr/bin/redis-server"
GOAL_ERROR = 0.020
MEMBER = "bench-redis"


class SetWorkload:
    """SET bench:<rep>:<seq> with one bounded attempt (no retries), like drill's workload."""

    def __init__(self, port: int, timeout: float, rep: int) -> None:
        self.prefix = f"bench:{rep}:"
        self.r = Redis(host="127.0.0.1", port=port, socket_timeout=timeout,
                       socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))

    def write(self, seq: int) -> None:
        try:
            self.r.set(f"{self.prefix}{seq}", seq)
        except RedisTimeoutError as exc:  # sent, maybe applied: indeterminate
            raise OpUnknown(str(exc)) from exc

    def read_back(self, seqs: Collection[int]) -> set[int]:
        keys = [f"{self.prefix}{s}" for s in seqs]
        return {s for s, v in zip(seqs, self.r.mget(keys), strict=True) if v is not None}

    def close(self) -> None:
        self.r.close()


def wait_until(deadline: float) -> float:
    """Sleep until ~1 ms before `deadline`, then spin on the monotonic clock."""
    while (left := deadline - time.monotonic()) > 0.001:
        time.sleep(left - 0.001 if left > 0.002 else 0.0002)
    while time.monotonic() < deadline:
        pass
    return time.monotonic()


def one_rep(sup: Supervisor, port: int, rep: int, rate: float, timeout: float,
            outage: float) -> dict[str, Any]:
    history = History()
    client = SetWorkload(port, timeout, rep)
    thread = WorkloadThread("redis.set", client, rate, history, lambda *_a, **_k: None)
    thread.start()
    try:
        # Warm-up: a lasting run of successes before the fault, as the runner requires.
        t_start = time.monotonic()
        poll_until(lambda: lasting_success(history.ops(), t_start, 20, 0.3), timeout=10,
                   interval=0.01, what="warm-up writes")
        pid = sup.pid(MEMBER)
        assert pid is not None
        stop_before = time.monotonic()
        os.killpg(pid, signal.SIGSTOP)
        stop_after = time.monotonic()
        wait_until(stop_before + outage)
        resume_before = time.monotonic()
        os.killpg(pid, signal.SIGCONT)
        resume_after = time.monotonic()
        poll_until(lambda: lasting_success(history.ops(), resume_after, 20, 0.5), timeout=15,
                   interval=0.01, what="recovery")
    finally:
        thread.stop()
        client.close()
    if thread.error is not None:
        raise RuntimeError(f"workload crashed: {thread.error!r}")
    ops = history.ops()
    r = recovery(ops, t_fault=stop_before)
    true_outage = resume_after - stop_before  # what the RTO should be, from t_fault
    err = None if r.rto_seconds is None else r.rto_seconds - true_outage
    before = [o for o in ops if o.completed < stop_before]  # the rate while healthy
    span = before[-1].completed - before[0].invoked if len(before) > 1 else 0.0
    return {
        "rep": rep,
        "true_outage_s": round(true_outage, 6),
        "stop_call_s": round(stop_after - stop_before, 6),
        "resume_call_s": round(resume_after - resume_before, 6),
        "resume_late_s": round(resume_before - (stop_before + outage), 6),
        "rto_s": r.rto_seconds,
        "error_s": err,
        "reported_error_bar_s": r.rto_error_seconds,
        "true_within_error_bar": (r.last_failure is not None and r.first_lasting_success
                                  is not None and r.last_failure <= resume_after
                                  <= r.first_lasting_success),
        "failed_or_unknown_ops": r.failed_ops,
        "unknown_ops": sum(1 for o in ops if o.status is OpStatus.UNKNOWN),
        "ops": len(ops),
        "achieved_rate": round((len(before) - 1) / span, 1) if span > 0 else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rate", type=float, default=100.0, help="workload ops per second")
    ap.add_argument("--timeout", type=float, default=0.25, help="client socket timeout (s)")
    ap.add_argument("--outage", type=float, default=2.0, help="SIGSTOP duration (s)")
    args = ap.parse_args()
    if not Path(REDIS_SERVER).exists():
        print(f"{REDIS_SERVER} is not installed (apt-get install redis-server)")
        return 2

    reps: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="drill-bench-rto-") as tmp:
        state = Path(tmp)
        sup = Supervisor(state)
        port = free_port()
        spec = ProcessSpec(
            name=MEMBER,
            argv=[REDIS_SERVER, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                  "--appendonly", "no", "--dir", str(state), "--protected-mode", "yes"],
            port=port, log=state / "redis.log", cwd=state)
        pid = sup.start(spec)
        print(f"redis-server pid {pid} on 127.0.0.1:{port}; rate {args.rate:g}/s, socket "
              f"timeout {args.timeout:g}s, outage {args.outage:g}s, {args.reps} reps")
        print(f"{'rep':>3} {'true outage':>12} {'RTO':>9} {'error':>9} {'error bar':>10} "
              f"{'failed':>6} {'rate':>6}  (rate: ops/s achieved before the fault)")
        try:
            for rep in range(1, args.reps + 1):
                row = one_rep(sup, port, rep, args.rate, args.timeout, args.outage)
                reps.append(row)
                err_ms = (row["error_s"] or 0) * 1000
                bar_ms = (row["reported_error_bar_s"] or 0) * 1000
                print(f"{rep:>3} {row['true_outage_s']:>11.4f}s {row['rto_s'] or 0:>8.4f}s "
                      f"{err_ms:>+7.2f}ms {bar_ms:>8.1f}ms {row['failed_or_unknown_ops']:>6} "
                      f"{row['achieved_rate']:>6}", flush=True)
        finally:
            sup.stop(MEMBER)

    errors = [r["error_s"] for r in reps if r["error_s"] is not None]
    abs_err = [abs(e) for e in errors]
    bars = [r["reported_error_bar_s"] for r in reps if r["reported_error_bar_s"] is not None]
    result = {
        "settings": {"rate_per_s": args.rate, "socket_timeout_s": args.timeout,
                     "outage_s": args.outage, "reps": args.reps,
                     "t_fault": "monotonic instant just before os.killpg(SIGSTOP)",
                     "true_outage": "just after os.killpg(SIGCONT) - t_fault"},
        "error_s": summary(errors),
        "max_abs_error_s": round(max(abs_err), 6) if abs_err else None,
        "mean_abs_error_s": round(statistics.fmean(abs_err), 6) if abs_err else None,
        "reported_error_bar_s": summary(bars),
        "true_within_error_bar": sum(1 for r in reps if r["true_within_error_bar"]),
        "goal_max_abs_error_s": GOAL_ERROR,
        "goal_met": bool(abs_err) and len(abs_err) == len(reps) and max(abs_err) <= GOAL_ERROR,
        "reps_detail": reps,
    }
    print(f"\nRTO - true outage over {len(errors)} reps: mean {result['error_s']['mean']:+.4f}s, "
          f"max |error| {result['max_abs_error_s']:.4f}s (goal <= {GOAL_ERROR}s: "
          f"{'met' if result['goal_met'] else 'NOT met'})")
    print(f"error bar drill reports: mean {result['reported_error_bar_s']['mean']:.4f}s, "
          f"max {result['reported_error_bar_s']['max']:.4f}s; true recovery inside it in "
          f"{result['true_within_error_bar']}/{len(reps)} reps")
    write_results("rto_accuracy", result)
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

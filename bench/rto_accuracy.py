"""Accuracy of drill's client-view RTO against a known outage.

A server is frozen with SIGSTOP of every one of its processes and resumed with SIGCONT
exactly `--outage` seconds later (monotonic clock), while a workload driven by the engine's
WorkloadThread records into a History; `recovery(ops, t_fault=stop)` gives the RTO, which is
compared with the true outage (resume - stop, both taken right around the os.kill calls).

  redis     a standalone redis-server frozen; a redis-py SET workload, one bounded attempt
  pg-stall  PostgreSQL 15 primary + synchronous streaming replica (drill's own deployment
            code); the replica is frozen, so commits on the primary stall; drill's own
            sequenced-insert client with a per-operation deadline (a stalled commit ends
            as unknown)

Servers bind 127.0.0.1 at --port-base + drill's offsets; state lives in a temp folder.

    .venv/bin/python bench/rto_accuracy.py [--case redis|pg-stall|all] [--reps 10] ...
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any

from _common import summary, write_results
from _rto_targets import REDIS_SERVER, PostgresSyncReplicaFreeze, RedisFreeze, Target
from drillrunner.core.errors import MissingBinary
from drillrunner.core.waiting import poll_until
from drillrunner.engine.history import History, Op, OpStatus
from drillrunner.engine.outcome import LASTING_OPS
from drillrunner.engine.recovery import lasting_success, recovery
from drillrunner.engine.schedule import WorkloadThread
from drillrunner.services.timescaledb.local import find_bindir
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.local.supervisor import Supervisor

GOAL_ERROR = 0.020
CASES = ("redis", "pg-stall")
# Per-operation deadline: redis-py's socket timeout; drill's default for sequenced writes.
DEFAULT_TIMEOUT = {"redis": 0.25, "pg-stall": 1.0}


def wait_until(deadline: float) -> float:
    """Sleep until ~1 ms before `deadline`, then spin on the monotonic clock."""
    while (left := deadline - time.monotonic()) > 0.001:
        time.sleep(left - 0.001 if left > 0.002 else 0.0002)
    while time.monotonic() < deadline:
        pass
    return time.monotonic()


@contextmanager
def precise_timing() -> Iterator[bool]:
    """Run the calling thread (only it: the workload thread and the servers keep their
    priority) at real-time priority, so the stop and resume instants, the truth drill is
    compared with, are not blurred by the scheduler preempting this thread between a
    timestamp and its os.kill. Yields whether that was allowed (root or CAP_SYS_NICE)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                              os.sched_param(50))
    except (PermissionError, AttributeError):
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with suppress(ProcessLookupError):  # exited since it was listed: nothing to freeze
            os.kill(pid, sig)


def one_rep(target: Target, rep: int, args: argparse.Namespace) -> dict[str, Any]:
    history = History()
    client = target.client(rep)
    thread = WorkloadThread(target.workload, client, args.rate, history, lambda *_a, **_k: None)
    thread.start()
    try:
        # Warm-up: a lasting run of successes before the fault, as the runner requires.
        t_start = time.monotonic()
        poll_until(lambda: lasting_success(history.ops(), t_start, 20, 0.3), timeout=15,
                   interval=0.01, what="warm-up writes")
        pids = target.frozen_pids()
        with precise_timing() as realtime:
            stop_before = time.monotonic()
            try:
                signal_all(pids, signal.SIGSTOP)
                stop_after = time.monotonic()
                wait_until(stop_before + args.outage)
            finally:
                resume_before = time.monotonic()
                signal_all(pids, signal.SIGCONT)
                resume_after = time.monotonic()
        poll_until(lambda: lasting_success(history.ops(), resume_after, LASTING_OPS,
                                           args.stable),
                   timeout=args.stable + 15, interval=0.01, what="recovery")
    finally:
        thread.stop()
        client.close()
    if thread.error is not None:
        raise RuntimeError(f"workload crashed: {thread.error!r}")
    ops = history.ops()
    r = recovery(ops, t_fault=stop_before, stable=args.stable, min_ops=LASTING_OPS)
    true_outage = resume_after - stop_before  # what the RTO should be, from t_fault
    err = None if r.rto_seconds is None else r.rto_seconds - true_outage
    bar = r.rto_error_seconds
    before = [o for o in ops if o.completed < stop_before]  # the rate while healthy
    span = before[-1].completed - before[0].invoked if len(before) > 1 else 0.0
    first_ok = next((o for o in ops if o.completed == r.recovered_at), None)
    return {
        "rep": rep,
        "true_outage_s": round(true_outage, 6),
        "stop_call_s": round(stop_after - stop_before, 6),
        "resume_call_s": round(resume_after - resume_before, 6),
        "resume_late_s": round(resume_before - (stop_before + args.outage), 6),
        "realtime_signalling": realtime,
        "rto_s": r.rto_seconds,
        "error_s": err,
        "reported_error_bar_s": bar,
        # Honest error bar: the true outage lies within rto ± the reported error.
        "true_within_error_bar": err is not None and bar is not None and abs(err) <= bar,
        "outage_observed": r.outage_observed,
        # Where the error comes from: start side (drill's outage start after the stop) and
        # end side (drill's recovery instant after the resume).
        "start_late_s": _r(None if r.outage_start is None else r.outage_start - stop_before),
        "end_late_s": _r(None if r.recovered_at is None else r.recovered_at - resume_after),
        # A failed or stalled operation already running at the freeze: the start is exact.
        "bad_op_in_flight_at_stop": _bad_in_flight(ops, stop_before),
        "recovered_by": _recovered_by(first_ok, resume_after),
        "healthy_latency_s": _latency(before),
        # The operations from the last success before the stop to the recovery, in ms from
        # the stop: (invoked, completed, status).
        "trace_ms": _trace(ops, stop_before, resume_after, r.recovered_at),
        "failed_ops": r.failed_ops,
        "unknown_ops": r.unknown_ops,
        "ops": len(ops),
        "achieved_rate": round((len(before) - 1) / span, 1) if span > 0 else None,
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def _latency(ops: list[Op]) -> dict[str, float | int | None]:
    """Latency of the successful operations before the fault (median, max)."""
    lat = summary([o.completed - o.invoked for o in ops if o.status is OpStatus.OK])
    return {k: lat[k] for k in ("median", "max")}


def _trace(ops: list[Op], stop: float, resume: float, end: float | None
           ) -> list[tuple[float, float, str]]:
    ok_before = [o.completed for o in ops if o.status is OpStatus.OK and o.completed < stop]
    begin = max(ok_before, default=stop)
    upto = end if end is not None else resume
    return [(round((o.invoked - stop) * 1000, 1), round((o.completed - stop) * 1000, 1),
             o.status.value) for o in ops if begin <= o.completed <= upto]


def _bad_in_flight(ops: list[Op], t: float) -> bool:
    return any(o.invoked < t <= o.completed and o.status is not OpStatus.OK for o in ops)


def _recovered_by(op: Op | None, resume: float) -> str | None:
    """How the service was seen back: an operation in flight through the resume, or one
    begun after it."""
    if op is None:
        return None
    return "op in flight at resume" if op.invoked < resume else "op begun after resume"


def run_case(name: str, target: Target, args: argparse.Namespace) -> dict[str, Any]:
    timeout = args.timeout if args.timeout is not None else DEFAULT_TIMEOUT[name]
    print(f"\n== {name}: {target.start()}")
    print(f"rate {args.rate:g}/s, per-op timeout {timeout:g}s, outage {args.outage:g}s, "
          f"stable {args.stable:g}s, {args.reps} reps")
    print(f"{'rep':>3} {'true outage':>12} {'RTO':>9} {'error':>9} {'start':>8} {'end':>8} "
          f"{'error bar':>10} {'in?':>3} {'unk':>4} {'rate':>6}  recovered by")
    reps = []
    for rep in range(1, args.reps + 1):
        row = one_rep(target, rep, args)
        reps.append(row)
        print(f"{rep:>3} {row['true_outage_s']:>11.4f}s {_f(row['rto_s'], '.4f', 's'):>9} "
              f"{_f(row['error_s'], '+.2f'):>9} {_f(row['start_late_s'], '+.1f'):>8} "
              f"{_f(row['end_late_s'], '+.1f'):>8} {_f(row['reported_error_bar_s'], '.1f'):>10} "
              f"{'yes' if row['true_within_error_bar'] else 'NO':>3} {row['unknown_ops']:>4} "
              f"{_f(row['achieved_rate'], '.1f', ''):>6}  "
              f"{row['recovered_by'] or 'no outage observed'}", flush=True)
    return {"settings": {"rate_per_s": args.rate, "op_timeout_s": timeout,
                         "outage_s": args.outage, "stable_s": args.stable,
                         "lasting_ops": LASTING_OPS, "reps": args.reps},
            **figures(reps), "reps_detail": reps}


def _f(x: float | None, spec: str, unit: str = "ms") -> str:
    """`x` (seconds) formatted in `unit` (ms, s or a plain number), or n/a."""
    scale = 1000 if unit == "ms" else 1
    return "n/a" if x is None else format(x * scale, spec) + unit


def figures(reps: list[dict[str, Any]]) -> dict[str, Any]:
    errors = [r["error_s"] for r in reps if r["error_s"] is not None]
    abs_err = [abs(e) for e in errors]
    bars = [r["reported_error_bar_s"] for r in reps if r["reported_error_bar_s"] is not None]
    rates = [r["achieved_rate"] for r in reps if r["achieved_rate"] is not None]
    return {
        "error_s": summary(errors),
        "max_abs_error_s": round(max(abs_err), 6) if abs_err else None,
        "mean_abs_error_s": round(statistics.fmean(abs_err), 6) if abs_err else None,
        "reported_error_bar_s": summary(bars),
        "true_within_error_bar": sum(1 for r in reps if r["true_within_error_bar"]),
        "achieved_rate_per_s": summary(rates),
        # How precisely the truth itself was taken: the longest os.kill round of a rep.
        "max_signal_call_s": max((max(r["stop_call_s"], r["resume_call_s"]) for r in reps),
                                 default=None),
        "recovered_by": dict(Counter(str(r["recovered_by"]) for r in reps)),
        "goal_max_abs_error_s": GOAL_ERROR,
        "goal_met": bool(abs_err) and len(abs_err) == len(reps) and max(abs_err) <= GOAL_ERROR,
    }


def print_case(name: str, c: dict[str, Any]) -> None:
    n = len(c["reps_detail"])
    print(f"{name}: RTO - true outage over {c['error_s']['n']} of {n} reps: mean "
          f"{_f(c['error_s']['mean'], '+.2f')}, mean |error| {_f(c['mean_abs_error_s'], '.2f')}, "
          f"max |error| {_f(c['max_abs_error_s'], '.2f')} (goal <= {GOAL_ERROR * 1000:g} ms: "
          f"{'met' if c['goal_met'] else 'NOT met'}); error bar mean "
          f"{_f(c['reported_error_bar_s']['mean'], '.1f')}, true outage within RTO ± error "
          f"bar in {c['true_within_error_bar']}/{n} reps; rate achieved "
          f"{_f(c['achieved_rate_per_s']['mean'], '.1f', '')}/s; recovered by "
          f"{c['recovered_by']}; longest os.kill round {_f(c['max_signal_call_s'], '.2f')}")


def missing(case: str) -> str | None:
    if case == "redis" and not Path(REDIS_SERVER).exists():
        return f"{REDIS_SERVER} is not installed (apt-get install redis-server)"
    if case == "pg-stall":
        try:
            find_bindir()
        except MissingBinary as exc:
            return str(exc)
    return None


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop servers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=[*CASES, "all"], default="all")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rate", type=float, default=100.0, help="workload ops per second")
    ap.add_argument("--timeout", type=float, default=None,
                    help="per-operation timeout, s (default: redis 0.25, pg-stall 1.0)")
    ap.add_argument("--outage", type=float, default=2.0, help="SIGSTOP duration (s)")
    ap.add_argument("--stable", type=float, default=1.0,
                    help="how long the recovery must last (s), as a scenario's recovery.stable")
    ap.add_argument("--port-base", type=int, default=17500,
                    help="ports as drill's stack: redis +10, PostgreSQL +0/+1")
    args = ap.parse_args()
    cases = list(CASES) if args.case == "all" else [args.case]
    for case in cases:
        if (why := missing(case)) is not None:
            print(why)
            return 2
    signal.signal(signal.SIGTERM, _terminate)

    results: dict[str, dict[str, Any]] = {}
    settings = StackSettings(port_base=args.port_base)
    with tempfile.TemporaryDirectory(prefix="drill-bench-rto-") as tmp:
        state = Path(tmp)
        state.chmod(0o755)  # PostgreSQL runs as `postgres` and must traverse it
        sup = Supervisor(state)
        for case in cases:
            timeout = args.timeout if args.timeout is not None else DEFAULT_TIMEOUT[case]
            kind = RedisFreeze if case == "redis" else PostgresSyncReplicaFreeze
            target = kind(sup, state, settings, timeout)
            try:
                results[case] = run_case(case, target, args)
            finally:
                target.stop()

    print()
    for case, c in results.items():
        print_case(case, c)
    every = [row for c in results.values() for row in c["reps_detail"]]
    result = {
        "settings": {"cases": cases, "port_base": args.port_base,
                     "t_fault": "monotonic instant just before the first os.kill(SIGSTOP)",
                     "true_outage": "just after the last os.kill(SIGCONT) - t_fault"},
        # Headline figures over every case's repetitions; per case under `cases`.
        **figures(every),
        "goal_met": all(c["goal_met"] for c in results.values()),
        "cases": results,
    }
    write_results("rto_accuracy", result)
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())

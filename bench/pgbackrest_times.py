"""Time pgBackRest on the local timescaledb tier: a full backup, an incremental one, and a
point-in-time restore into `tsdb-pitr` until it accepts queries as a primary (the PITR
drill's RTO), for the drill's data set and for a larger one.

etcd and timescaledb (Patroni, tsdb-0 + tsdb-1) are started by drill's own deployments in a
fresh state folder (mode 755: PostgreSQL runs as `postgres`) at --port-base, and stopped by
PID at the end.

    .venv/bin/python bench/pgbackrest_times.py [--port-base 18400] [--reps 3] [--extra-mb 100]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import summary, write_results
from drillrunner.services.timescaledb import pgbackrest as pgbr
from drillrunner.services.timescaledb import sql
from drillrunner.stack.local import LocalTarget
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.local.supervisor import port_in_use

SERVICES = ("etcd", "timescaledb")
PORT_SPAN = 30
DRILL_ROWS = 1000  # about what the PITR drill's workload commits (50/s for ~20 s)


def write_rows(dsn: str, rows: int, payload: int = 100) -> None:
    """Rows into a plain table: `rows` of `payload` bytes each."""
    with sql.connect(dsn, for_writes=True) as conn:
        sql.execute_bounded(conn, "CREATE TABLE IF NOT EXISTS bench_rows "
                            "(id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), body text)",
                            [], 30.0)
        sql.execute_bounded(conn, "INSERT INTO bench_rows (body) SELECT repeat('x', $1::int) "
                            "FROM generate_series(1, $2::int)", [str(payload), str(rows)],
                            600.0)


def restore_until_primary(dep: Any, target_time: str) -> dict[str, float]:
    """pgbackrest restore into tsdb-pitr, then wait until it accepts queries as a primary."""
    import psycopg

    started = time.monotonic()
    dep.pgbackrest_restore(target_time)
    restored = time.monotonic()
    dsn = dep.dsn("tsdb-pitr")
    while True:
        try:
            if sql.fetch_value(dsn, "SELECT pg_is_in_recovery()") is False:
                break
        except psycopg.Error:
            pass
        if time.monotonic() - started > 300:
            raise RuntimeError("tsdb-pitr did not finish recovery in 300 s")
        time.sleep(0.05)
    done = time.monotonic()
    dep.remove_member("tsdb-pitr")
    return {"restore_command_s": round(restored - started, 3),
            "rto_s": round(done - started, 3)}


def one_round(dep: Any, primary_dsn: str) -> dict[str, Any]:
    full, full_s = dep.pgbackrest_backup(pgbr.BackupType.FULL)
    write_rows(primary_dsn, DRILL_ROWS)
    incr, incr_s = dep.pgbackrest_backup(pgbr.BackupType.INCR)
    target = str(sql.fetch_value(primary_dsn, "SELECT clock_timestamp()::text"))
    write_rows(primary_dsn, DRILL_ROWS)  # after the target: replay must stop before these
    sql.fetch(primary_dsn, "SELECT pg_switch_wal()")
    time.sleep(1.0)  # the archiver pushes the switched segment
    restore = restore_until_primary(dep, target)
    return {"database_bytes": full.size, "full_s": full_s, "full_repo_bytes": full.repo_size,
            "incr_s": incr_s, "incr_repo_bytes": incr.repo_size, **restore}


def measure(dep: Any, primary_dsn: str, reps: int) -> dict[str, Any]:
    rounds = []
    for i in range(reps):
        r = one_round(dep, primary_dsn)
        print(f"  rep {i + 1}: db {r['database_bytes'] / 1e6:.0f} MB, full {r['full_s']:.2f} s, "
              f"incr {r['incr_s']:.2f} s, restore {r['restore_command_s']:.2f} s, "
              f"RTO {r['rto_s']:.2f} s", flush=True)
        rounds.append(r)
    keys = ("full_s", "incr_s", "restore_command_s", "rto_s")
    return {"rounds": rounds, **{k: summary([r[k] for r in rounds]) for k in keys},
            "database_bytes": rounds[-1]["database_bytes"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-base", type=int, default=18400)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--extra-mb", type=int, default=100,
                    help="size of the larger data set added after the drill's (0: skip)")
    args = ap.parse_args()
    busy = [p for p in range(args.port_base, args.port_base + PORT_SPAN) if port_in_use(p)]
    if busy:
        print(f"ports in use: {busy}; choose another --port-base")
        return 2
    state = Path(tempfile.mkdtemp(prefix="drill-bench-pgbr-"))
    state.chmod(0o755)
    target = LocalTarget(state, StackSettings(port_base=args.port_base))
    result: dict[str, Any] = {"port_base": args.port_base, "reps": args.reps}
    try:
        for service in SERVICES:
            target.deployment(service).up()
        dep = target.deployment("timescaledb")
        primary = dep.leader() if hasattr(dep, "leader") else "tsdb-0"
        dsn = dep.dsn(primary)
        print(f"drill's data set ({DRILL_ROWS} rows between backups):")
        result["drill_data_set"] = measure(dep, dsn, args.reps)
        if args.extra_mb:
            write_rows(dsn, args.extra_mb * 10_000)  # ~100 bytes of row + ~40 of overhead
            print(f"with ~{args.extra_mb} MB of extra rows:")
            result["larger_data_set"] = measure(dep, dsn, args.reps)
        result["ok"] = True
    finally:
        for service in reversed(SERVICES):
            target.deployment(service).down()
        shutil.rmtree(state, ignore_errors=True)
    write_results("pgbackrest_times", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

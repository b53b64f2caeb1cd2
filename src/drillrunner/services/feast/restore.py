"""Refilling the online store from the offline store, and restoring the SQL registry."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from drillrunner.core.actions import action
from drillrunner.core.errors import ActionFailed
from drillrunner.core.units import Duration
from drillrunner.core.verdicts import FaultResult
from drillrunner.core.waiting import WaitTimeout, poll_until
from drillrunner.engine.context import RunContext
from drillrunner.services.feast import canary, http
from drillrunner.services.feast.ops import FeastOps, feast_ops

STASH_RESTORES = "feast.restores"
STASH_BACKUP = "feast.registry_backup"
STASH_REGISTRY_RESTORE = "feast.registry_restore"
POLL = 0.1  # polling interval of the waits here, hence the error bar of their times


class Mode(StrEnum):
    FULL = "full"  # materialize [2000-01-01, now]: rewrites every value
    INCREMENTAL = "incremental"  # from the registry's watermark to now


class Via(StrEnum):
    SERVER = "server"  # POST /materialize(-incremental) to the running feature server
    CLI = "cli"  # `feast materialize(-incremental)` in a new process


def canaries_correct(ops: FeastOps, truth: canary.Truth | None = None) -> bool:
    try:
        served = canary.parse_response(http.online_features(ops.base_url()))
    except Exception:
        return False
    return not canary.compare(truth or ops.offline_truth(), served)


def wait_serving(ops: FeastOps, timeout: float) -> float:
    """Wait until /health is 200 and the canaries are served correctly; seconds waited."""
    t0 = time.monotonic()
    truth = ops.offline_truth()
    poll_until(lambda: http.health(ops.base_url()) == 200 and canaries_correct(ops, truth),
               timeout=timeout, interval=POLL, what="feast-0 to serve the canaries correctly")
    return time.monotonic() - t0


def _materialize(ops: FeastOps, mode: Mode, via: Via, timeout: float) -> str:
    start, end = ops.materialize_range()
    if via is Via.SERVER:
        try:
            if mode is Mode.FULL:
                http.materialize(ops.base_url(), start, end, timeout)
            else:
                http.materialize_incremental(ops.base_url(), end, timeout)
        except (http.FeastHttpError, http.FeastTimeout, http.FeastUnavailable) as exc:
            raise ActionFailed(f"{mode} materialisation through the server failed: {exc}") \
                from None
        return f"POST /materialize{'' if mode is Mode.FULL else '-incremental'}"
    args = ("materialize", start, end) if mode is Mode.FULL else ("materialize-incremental",
                                                                   end)
    run = ops.run_cli(*args, timeout=timeout)
    if run.returncode != 0:
        raise ActionFailed(f"{run.command} failed (exit {run.returncode}): {run.output_tail}")
    return run.command


@action("feast.rematerialize")
def rematerialize(ctx: RunContext, mode: Mode = Mode.FULL, via: Via = Via.SERVER,
                  verify_timeout: Duration = 3.0, timeout: Duration = 180.0) -> FaultResult:
    """Materialise the feature view into the online store (`full`: the whole range of the
    offline store; `incremental`: from the registry's watermark), through the server or
    the CLI, then see whether the canaries are served correctly within `verify_timeout`.
    Not restoring is an observation, not an error (incremental does not refill a
    flushed store: its watermark says everything is already there)."""
    ops = feast_ops(ctx.target)
    truth = ops.offline_truth()
    broken_before = not canaries_correct(ops, truth)
    t0 = time.monotonic()
    command = _materialize(ops, mode, via, timeout)
    ran = time.monotonic() - t0
    try:
        poll_until(lambda: canaries_correct(ops, truth), timeout=verify_timeout, interval=POLL,
                   what="the canaries to be served correctly")
        restored = True
    except WaitTimeout:
        restored = False
    seconds = time.monotonic() - t0
    entry = {"mode": mode.value, "via": via.value, "command": command,
             "broken_before": broken_before, "restored": restored,
             "command_seconds": round(ran, 4), "seconds": round(seconds, 4) if restored else None,
             "keys_after": ops.online_store_keys()}
    ctx.stash.setdefault(STASH_RESTORES, []).append(entry)
    verdict = "served correctly" if restored else "STILL WRONG"
    return FaultResult(
        summary=f"{mode} materialisation via {via} ran in {ran:.2f}s; canaries {verdict}",
        members=[ops.server().name], detail=entry,
        measurements={f"materialize_{mode.value}_{via.value}_seconds": round(ran, 4)})


@action("feast.restart_server")
def restart_server(ctx: RunContext, timeout: Duration = 120.0) -> FaultResult:
    """Start the feature server if it is down and wait until it serves the canaries
    correctly (it does not materialise: a wrong online store stays wrong)."""
    ops = feast_ops(ctx.target)
    running = ctx.target.is_running(ops.server())
    ops.start_server()
    waited = wait_serving(ops, timeout)
    return FaultResult(summary=f"{'already running' if running else 'started'} feast-0; "
                       f"serving correctly after {waited:.2f}s",
                       members=[] if running else [ops.server().name])


@action("feast.backup_registry")
def backup_registry(ctx: RunContext) -> FaultResult:
    """pg_dump of the SQL registry's schema into the artifacts folder; the registry's
    objects (name and proto checksum of each) are stashed to compare after a restore."""
    ops = feast_ops(ctx.target)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = ctx.target.artifacts_dir() / "feast" / f"{ctx.scenario}-{stamp}.registry.dump"
    objects = ops.registry_objects()
    t0 = time.monotonic()
    ops.backup_registry(dest)
    seconds = time.monotonic() - t0
    ctx.stash[STASH_BACKUP] = {"path": str(dest), "objects": objects}
    count = sum(len(v) for v in objects.values())
    return FaultResult(summary=f"registry ({count} objects) dumped to {dest} in {seconds:.2f}s",
                       detail={"path": str(dest), "objects": objects,
                               "bytes": dest.stat().st_size},
                       measurements={"registry_backup_seconds": round(seconds, 4)})


def restore_and_serve(ops: FeastOps, src: Path, timeout: float) -> dict[str, Any]:
    """Restore the registry dump, restart the server so it loads it, wait until the
    canaries are served correctly. Returns the timings."""
    t0 = time.monotonic()
    ops.restore_registry(src)
    restored = time.monotonic() - t0
    ops.stop_server()
    ops.start_server()
    wait_serving(ops, timeout)
    return {"restore_seconds": round(time.monotonic() - t0, 4),
            "pg_restore_seconds": round(restored, 4), "error_seconds": POLL}


@action("feast.restore_registry")
def restore_registry(ctx: RunContext, path: str | None = None,
                     timeout: Duration = 120.0) -> FaultResult:
    """Replace the SQL registry with a dump (default: the one this scenario took),
    restart the feature server and wait until it serves the canaries correctly."""
    source = path or (ctx.stash.get(STASH_BACKUP) or {}).get("path")
    if not source or not Path(source).exists():
        raise ActionFailed("no registry dump: run feast.backup_registry first or give path")
    ops = feast_ops(ctx.target)
    timing = restore_and_serve(ops, Path(source), timeout)
    ctx.stash[STASH_REGISTRY_RESTORE] = {**timing, "path": source}
    return FaultResult(
        summary=f"registry restored from {source}; serving correctly after "
                f"{timing['restore_seconds']:.2f}s", members=[ops.server().name],
        detail={"path": source, **timing},
        measurements={"restore_seconds": timing["restore_seconds"]})


@action("feast.recover_registry")
def recover_registry(ctx: RunContext, backup: str | None = None,
                     timeout: Duration = 180.0) -> FaultResult:
    """Undo of feast.destroy_registry, idempotent: nothing if the registry is there and
    the server serves; else restore `backup` if it exists, else re-create the registry
    from the feature definitions (`feast apply`) and materialise in full."""
    ops = feast_ops(ctx.target)
    if ops.registry_present():
        ops.start_server()
        if canaries_correct(ops):
            return FaultResult(summary="registry present and canaries served: nothing to do")
    if backup and Path(backup).exists() and not ops.registry_present():
        timing = restore_and_serve(ops, Path(backup), timeout)
        return FaultResult(summary=f"restored the registry from {backup}",
                           members=[ops.server().name], detail=timing)
    if not ops.registry_present():
        run = ops.run_cli("apply", timeout=timeout)
        if run.returncode != 0:
            raise ActionFailed(f"feast apply failed: {run.output_tail}")
    ops.stop_server()
    ops.start_server()
    poll_until(lambda: http.health(ops.base_url()) == 200, timeout=timeout, interval=POLL,
               what="feast-0's /health")
    if not canaries_correct(ops):
        _materialize(ops, Mode.FULL, Via.SERVER, timeout)
    wait_serving(ops, timeout)
    return FaultResult(summary="re-created the registry with feast apply and materialised",
                       members=[ops.server().name])

"""pgBackRest on kind (KindPgBackRest: BacksUpWithPgBackRest through exec in the leader's
pod) against the fake Kubernetes API and test_kind_postgres's World of two Patroni pods.

Every exec really runs here: the scripts in a shell, with each pod's data volume
(kind_members.DATA) and pgBackRest repository (kind_members.REPO) pointed at temp folders,
and `pgbackrest` itself a fake on PATH (FAKE_PGBACKREST) that keeps a file repository:
its `info` JSON, `verify` report and error texts are pgBackRest 2.45's own (captured from
the Debian package, as in test_pgbackrest.py), and its verify compares each backup file
with the checksum recorded at backup time, so a flipped byte is really found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from drillrunner.core.errors import ActionFailed
from drillrunner.core.verdicts import Verdict
from drillrunner.services.timescaledb import backup, checks, kind_backup, sql
from drillrunner.services.timescaledb import kind as kp
from drillrunner.services.timescaledb import pgbackrest as pgbr
from drillrunner.services.timescaledb.kind_members import DATA, REPO
from drillrunner.services.timescaledb.local_backup import PgBackRestBackups
from drillrunner.services.timescaledb.ops import BacksUpWithPgBackRest
from drillrunner.targets.kind.apis import KubeApis
from drillrunner.targets.kind.target import KindTarget
from failfast import pg
from tests.unit import test_kind_postgres
from tests.unit.kind_fakes import ADAPTERS, BarePodCore, apis
from tests.unit.test_kind_postgres import IPS, Member, P, PitrCore, R, World, ctx_for

TARGET = "2026-12-07 20:16:53.269026+00"
SYSTEM_ID = 7716657487293727700
CONF = "/etc/pgbackrest/pgbackrest.conf"
BASE = ["pgbackrest", f"--config={CONF}", "--stanza=timescaledb"]
world = test_kind_postgres.world  # the two Patroni pods, their SQL and labels

# pgbackrest 2.45 as exec runs it: argv only, the repository in FAKE_REPO, the database's
# system id in FAKE_SYSTEM_ID; FAKE_REFUSE makes a backup fail as one whose WAL never
# reaches the repository does.
FAKE_PGBACKREST = r'''
import hashlib, json, os, shutil, sys, time
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as calls:  # the argv as the binary got it
    calls.write(json.dumps([os.environ["FAKE_POD"], args]) + "\n")
opt = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
cmd = [a for a in args if not a.startswith("--")][-1]
assert opt["config"] == "/etc/pgbackrest/pgbackrest.conf" and opt["stanza"] == "timescaledb"
repo = Path(os.environ["FAKE_REPO"])
top = repo / "backup" / "timescaledb"
info_file = top / "backup.info"
T = "2026-12-07 20:16:16.180"

def log(p, msg):
    print(f"{T} P{p:02d}   INFO: {msg}")

def load():
    return json.loads(info_file.read_text())

if cmd == "info":
    if not info_file.exists():  # pgbackrest 2.45, verbatim
        print('[{"archive":[],"backup":[],"cipher":"none","db":[],"name":"timescaledb",'
              '"repo":[{"cipher":"none","key":1,"status":{"code":1,"message":'
              '"missing stanza path"}}],"status":{"code":1,"lock":{"backup":{"held":false}},'
              '"message":"missing stanza path"}}]', end="")
        sys.exit(0)
    st = load()
    print(json.dumps([{"name": "timescaledb", "cipher": "none",
                       "status": {"code": 0, "message": "ok"},
                       "db": [{"id": 1, "system-id": st["system-id"], "version": "15"}],
                       "backup": st["backups"]}]), end="")
elif cmd == "stanza-create":
    log(0, "stanza-create command begin 2.45")
    if info_file.exists():
        if load()["system-id"] != int(os.environ["FAKE_SYSTEM_ID"]):
            print("ERROR: [028]: backup info file or archive info file invalid", file=sys.stderr)
            sys.exit(28)
    else:
        top.mkdir(parents=True)
        (repo / "archive" / "timescaledb").mkdir(parents=True, exist_ok=True)
        info_file.write_text(json.dumps({"system-id": int(os.environ["FAKE_SYSTEM_ID"]),
                                         "backups": []}))
    log(0, "stanza-create command end: completed successfully (21ms)")
elif cmd == "check":
    log(0, "check repo1 configuration (primary)")
    log(0, "check command end: completed successfully (612ms)")
elif cmd == "backup":
    log(0, f"backup command begin 2.45: --type={opt['type']}")
    if os.environ.get("FAKE_REFUSE"):
        print("ERROR: [082]: WAL segment 000000010000000000000005 was not archived before "
              "the 30000ms timeout", file=sys.stderr)
        print(f"{T} P00   INFO: backup command end: aborted with exception [082]")
        sys.exit(82)
    st = load()
    n = len(st["backups"])
    stamp = f"20261207-2012{10 + n:02d}"
    full = [b["label"] for b in st["backups"] if b["type"] == "full"]
    label = (f"{full[-1]}_{stamp}{opt['type'][0].upper()}" if opt["type"] != "full"
             else f"{stamp}F")
    base = top / label / "pg_data"
    sums = {}
    for rel, size in (("PG_VERSION", 3), ("base/1/1259.lz4", 4096), ("base/1/2838.lz4", 9000),
                      ("base/5/2840.lz4", 9000)):
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes((i * 7 + n) % 251 for i in range(size)))
        sums[f"{label}/pg_data/{rel}"] = hashlib.sha1(path.read_bytes()).hexdigest()
    (top / label / "sums.json").write_text(json.dumps(sums))
    st["backups"].append({
        "label": label, "type": opt["type"],
        "archive": {"start": "000000010000000000000002", "stop": "000000010000000000000003"},
        "info": {"size": 22992597, "repository": {"delta": 4534054, "size": 4534054}},
        "timestamp": {"start": 1796674332 + n, "stop": 1796674335 + n}})
    info_file.write_text(json.dumps(st))
    log(0, f"new backup label = {label}")
    log(0, "backup command end: completed successfully (2873ms)")
elif cmd == "verify":
    if not info_file.exists():  # pgbackrest 2.45, verbatim
        print("ERROR: [055]: unable to load info file "
              f"'{top}/backup.info' or '{top}/backup.info.copy':", file=sys.stderr)
        sys.exit(55)
    log(0, "verify command begin 2.45: --log-level-console=info --output=text "
           "--stanza=timescaledb --verbose")
    lines, bad_any = [], False
    for b in load()["backups"]:
        sums = json.loads((top / b["label"] / "sums.json").read_text())
        bad = [f for f, s in sums.items()
               if hashlib.sha1((top / f).read_bytes()).hexdigest() != s]
        for f in bad:
            log(1, f"invalid checksum '{f}'")
        bad_any = bad_any or bool(bad)
        lines += [f"  backup: {b['label']}, status: {'invalid' if bad else 'valid'}, total "
                  f"files checked: {len(sums)}, total valid files: {len(sums) - len(bad)}",
                  f"    missing: 0, checksum invalid: {len(bad)}, size invalid: 0, other: 0"]
    status = "error" if bad_any else "ok"
    print(f"stanza: timescaledb\nstatus: {status}")
    print("  archiveId: 15-1, total WAL checked: 5, total valid WAL: 5")
    print("    missing: 0, checksum invalid: 0, size invalid: 0, other: 0")
    print("\n".join(lines))
    log(0, "verify command end: completed successfully (467ms)")
elif cmd == "restore":
    dest, label = Path(opt["pg1-path"]), opt.get("set")
    assert opt["type"] == "time" and opt["target-action"] == "promote"
    if dest.exists() and any(dest.iterdir()):
        print(f"ERROR: [040]: unable to restore to path '{dest}' because it contains files",
              file=sys.stderr)
        sys.exit(40)
    if label is None:
        label = load()["backups"][-1]["label"]
    if not (top / label).is_dir():
        print(f"ERROR: [075]: backup set {label} is not valid", file=sys.stderr)
        sys.exit(75)
    shutil.copytree(top / label / "pg_data", dest, dirs_exist_ok=True)
    (dest / "standby.signal").touch()  # left by the backed-up standby's files
    (dest / "recovery.signal").touch()
    (dest / "postgresql.auto.conf").write_text(
        "restore_command = 'pgbackrest --stanza=timescaledb archive-get %f \"%p\"'\n"
        f"recovery_target_time = '{opt['target']}'\nrecovery_target_action = 'promote'\n"
        "archive_mode = 'off'\n")
    log(0, "restore command end: completed successfully (1042ms)")
else:
    sys.exit(f"unexpected pgbackrest command {cmd}")
'''


@dataclass
class Kb:
    world: World
    t: KindTarget
    ops: kp.KindPostgresOps
    core: PitrCore
    roots: dict[str, Path]
    env: dict[str, str]
    calls: list[tuple[str, list[str]]] = field(default_factory=list)

    def repo(self, member: str) -> Path:
        return self.roots[member] / "pgbackrest"

    def source_of(self, pod_name: str) -> str:
        """The member whose repository the pod mounts (the restore pod: its claim)."""
        if pod_name != kp.PITR:
            return pod_name
        body = [c[1][1] for c in self.world.c.calls if c[0] == "create_namespaced_pod"][-1]
        claims = [v["persistentVolumeClaim"] for v in body["spec"]["volumes"]
                  if "persistentVolumeClaim" in v]
        assert claims == [{"claimName": claims[0]["claimName"], "readOnly": True}]
        return str(claims[0]["claimName"]).removeprefix("pgbackrest-")

    def exec(self, pod_name: str, container: str, argv: list[str],
             stdin: str | None) -> tuple[int, str, str]:
        assert container == "timescaledb"
        self.calls.append((pod_name, argv))
        root = self.roots[pod_name]
        root.mkdir(parents=True, exist_ok=True)
        repo = self.repo(self.source_of(pod_name))
        local = [a.replace(REPO, str(repo)).replace(DATA, str(root)) for a in argv]
        path = f"{self.roots['bin']}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        done = subprocess.run(local, input=stdin, capture_output=True, text=True, timeout=60,
                              check=False, env={**os.environ, **self.env, "PATH": path,
                                                "FAKE_REPO": str(repo), "FAKE_POD": pod_name,
                                                "FAKE_LOG": str(self.roots["bin"] / "log")})
        if pod_name == kp.PITR and (root / "drill-restored").exists() \
                and kp.PITR not in self.world.pg:
            self.world.pg[kp.PITR] = Member(recovery=False)  # Ready, and promoted at once
            self.world.sync(kp.PITR)
        return done.returncode, done.stdout, done.stderr

    def pgbackrest_calls(self) -> list[tuple[str, list[str]]]:
        return [(p, a) for p, a in self.calls if a[0] == "pgbackrest"]


@pytest.fixture
def kb(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Kb:
    roots = {n: tmp_path / "pods" / n for n in (P, R, kp.PITR)}
    roots["bin"] = tmp_path / "bin"
    roots["bin"].mkdir()
    (roots["bin"] / "pgbackrest.py").write_text(FAKE_PGBACKREST)
    wrapper = roots["bin"] / "pgbackrest"  # first on the pods' PATH, scripts included
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {roots["bin"]}/pgbackrest.py "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setitem(IPS, kp.PITR, BarePodCore.bare_ip)
    fetch, execute = sql.fetch, sql.execute_bounded  # the World's

    def kb_fetch(dsn: str, query: str, params: Any = (), timeout: float = 2.0) -> list[Any]:
        if "pg_control_system" in query:
            return [(SYSTEM_ID,)]
        if query == "SELECT clock_timestamp()::text":
            return [(TARGET,)]
        if "pg_stat_archiver" in query:
            return [(True, "000000010000000000000004")]
        return fetch(dsn, query, params, timeout)

    def kb_execute(conn: Any, query: str, params: Any, timeout: float) -> list[Any]:
        rows = execute(conn, query, params, timeout)
        return [("000000010000000000000004",)] if "pg_switch_wal" in query else rows

    monkeypatch.setattr(sql, "fetch", kb_fetch)
    monkeypatch.setattr(pg, "fetch", kb_fetch)
    monkeypatch.setattr(sql, "execute_bounded", kb_execute)
    core = PitrCore(world, roots[kp.PITR])
    holder: list[Kb] = []
    a = apis(world.c, lambda *args: holder[0].exec(*args))
    t = KindTarget(KubeApis(core=core, apps=a.apps, networking=a.networking,
                            version=a.version, stream=a.stream),
                   adapters=ADAPTERS, context="kind-drill", state=tmp_path / "state",
                   forward=False)
    ops = kp.KindPostgresOps(t, "timescaledb")
    t._deployments["timescaledb"] = ops
    holder.append(Kb(world, t, ops, core, roots, {"FAKE_SYSTEM_ID": str(SYSTEM_ID)}))
    return holder[0]


def test_both_adapters_implement_the_protocol(kb: Kb) -> None:
    ctx, _ = ctx_for(kb.t)
    assert isinstance(kb.ops, BacksUpWithPgBackRest) and backup.pgbr_ops(ctx) is kb.ops
    wanted = [n for n in vars(BacksUpWithPgBackRest) if not n.startswith("_")]
    assert "read_backup_bytes" in wanted
    assert all(callable(getattr(PgBackRestBackups, n, None)) for n in wanted)
    assert kb.ops.backup_repo() == Path(REPO)


def test_backups_run_pgbackrest_in_the_leaders_pod(kb: Kb) -> None:
    ctx, _ = ctx_for(kb.t)
    assert kb.ops.pgbackrest_info() == ("missing stanza path", [])  # real 2.45 JSON
    kb.calls.clear()
    full = backup.pgbackrest_backup(ctx, type=pgbr.BackupType.FULL)
    info = [*BASE, "info", "--output=json"]
    assert kb.pgbackrest_calls() == [(P, info), (P, [*BASE, "stanza-create"]),
                                     (P, [*BASE, "--type=full", "backup"]), (P, info)]
    label = full.detail["label"]
    assert full.members == [P] and full.detail["type"] == "full"
    assert kind_backup.LABEL.fullmatch(label) and label.endswith("F")
    assert full.detail["repo"] == REPO and full.detail["wal_start"] == "000000010000000000000002"
    assert full.measurements["database_bytes"] == 22992597
    assert isinstance(full.measurements["backup_seconds"], float)
    assert ctx.stash[backup.PGBR_BACKUP_KEY] == {"label": label, "type": "full"}
    assert (kb.repo(P) / "backup" / "timescaledb" / label / "pg_data" / "PG_VERSION").exists()
    assert not kb.repo(R).exists()  # the replica's repository is not touched
    incr = backup.pgbackrest_backup(ctx, type=pgbr.BackupType.INCR)
    assert incr.detail["label"].startswith(f"{label}_") and incr.detail["type"] == "incr"
    status, entries = kb.ops.pgbackrest_info()
    assert status == "ok" and [e.type for e in entries] == ["full", "incr"]
    kb.calls.clear()
    assert kb.ops.pgbackrest_check().code == 0
    assert kb.pgbackrest_calls()[-1] == (P, [*BASE, "check"])
    # After a failover the new leader's pod and repository serve.
    kb.world.patroni_failover()
    kb.calls.clear()
    assert kb.ops.pgbackrest_info() == ("missing stanza path", [])
    assert kb.pgbackrest_calls() == [(R, info)]


def test_a_repository_of_another_system_is_emptied(kb: Kb) -> None:
    kb.env["FAKE_SYSTEM_ID"] = "42"
    kb.ops.ensure_stanza()
    kb.env["FAKE_SYSTEM_ID"] = str(SYSTEM_ID)
    kb.ops.ensure_stanza()
    assert any(a == ["sh", "-c", f"rm -rf {REPO}/archive/timescaledb "
                     f"{REPO}/backup/timescaledb"] for _, a in kb.calls)
    info = json.loads((kb.repo(P) / "backup" / "timescaledb" / "backup.info").read_text())
    assert info["system-id"] == SYSTEM_ID
    kb.calls.clear()
    kb.ops.ensure_stanza()  # the same system: nothing removed
    assert not [a for _, a in kb.calls if "rm -rf" in " ".join(a)]


def test_a_refused_backup_is_recorded_and_the_restore_fails(kb: Kb) -> None:
    ctx, _ = ctx_for(kb.t)
    kb.env["FAKE_REFUSE"] = "1"
    out = backup.pgbackrest_backup(ctx, type=pgbr.BackupType.FULL)
    assert "FAILED" in out.summary and out.measurements["backup_seconds"] is None
    assert f"failed in {P} (exit 82)" in ctx.stash[backup.BACKUP_FAILED_KEY]
    assert "was not archived before the 30000ms timeout" in out.detail["backup_failed"]
    backup.mark_restore_point(ctx)
    restored = backup.restore_pitr(ctx, timeout=2.0)
    assert restored.measurements["rto_seconds"] is None
    assert "no backup to restore" in restored.detail["restore_failed"]
    assert restored.detail["method"] == "pgbackrest"


def test_a_verify_that_cannot_read_the_repository_raises(kb: Kb) -> None:
    with pytest.raises(pgbr.PgBackRestFailed, match=r"exit 55.*unable to load info file"):
        kb.ops.pgbackrest_verify()


def test_corruption_is_caught_and_undone_on_kind(kb: Kb) -> None:
    """The integrity scenario's steps: the check FAILs while the backup is corrupt,
    and with expect_corruption FAILs once verify no longer names the file."""
    ctx, undos = ctx_for(kb.t)
    backup.pgbackrest_backup(ctx, type=pgbr.BackupType.FULL)
    label = ctx.stash[backup.PGBR_BACKUP_KEY]["label"]
    before = backup.verify_backup(ctx)
    assert before.detail["status"] == "ok" and before.measurements["invalid_files"] == 0
    assert kb.pgbackrest_calls()[-1] == (P, [*BASE, "--output=text", "--verbose",
                                             "--log-level-console=info", "verify"])
    assert kb.ops.backup_files(label) == {f"{label}/pg_data/base/1/1259.lz4": 4096,
                                          f"{label}/pg_data/base/1/2838.lz4": 9000,
                                          f"{label}/pg_data/base/5/2840.lz4": 9000}
    victim = kb.repo(P) / "backup" / "timescaledb" / label / "pg_data/base/5/2840.lz4"
    original = victim.read_bytes()
    seen: list[bytes] = []

    def sink(name: str, args: dict[str, Any]) -> None:
        seen.append(victim.read_bytes())
        undos.append((name, args))

    ctx._undo_sink = sink
    out = backup.corrupt_backup_file(ctx, length=16)
    rel = f"{label}/pg_data/base/5/2840.lz4"  # the largest, by name on a tie
    assert out.detail == {"file": rel, "offset": 4492, "length": 16, "size": 9000}
    assert seen == [original]  # journaled before the bytes changed
    name, args = undos[0]
    assert name == "timescaledb.restore_backup_file" and args == {
        "file": rel, "offset": 4492, "original": original[4492:4508].hex()}
    now = victim.read_bytes()
    assert len(now) == 9000 and now[4492:4508] == bytes(b ^ 0xFF for b in original[4492:4508])
    assert now[:4492] == original[:4492] and now[4508:] == original[4508:]

    caught = checks.backup_verified(ctx, expect_corruption=True)
    assert caught.verdict is Verdict.PASS and rel in caught.summary
    broken = checks.backup_verified(ctx)
    assert broken.verdict is Verdict.FAIL
    assert broken.evidence["problems"] == [f"invalid checksum '{rel}'"]
    assert broken.measurements["invalid_backups"] == 1

    assert "restored 16 bytes" in backup.restore_backup_file(ctx, **args).summary
    assert victim.read_bytes() == original
    assert "already" in backup.restore_backup_file(ctx, **args).summary
    assert checks.backup_verified(ctx).verdict is Verdict.PASS
    missed = checks.backup_verified(ctx, expect_corruption=True)
    assert missed.verdict is Verdict.FAIL and "did not report" in missed.summary


def test_the_undo_finds_the_file_in_a_former_leaders_repository(kb: Kb) -> None:
    ctx, undos = ctx_for(kb.t)
    backup.pgbackrest_backup(ctx, type=pgbr.BackupType.FULL)
    backup.corrupt_backup_file(ctx, length=8)
    kb.world.patroni_failover()  # R leads now; the file is in P's repository
    kb.calls.clear()
    assert "restored 8 bytes" in backup.restore_backup_file(ctx, **undos[0][1]).summary
    assert [p for p, _ in kb.calls] == [R, P, R, P]  # read, then written: in P's only
    gone = {**undos[0][1], "file": "20261207-201299F/pg_data/base/1/1.lz4"}
    assert "is gone" in backup.restore_backup_file(ctx, **gone).summary
    with pytest.raises(ActionFailed, match="is in no member's repository"):
        kb.ops.write_backup_bytes(gone["file"], 0, b"x")
    for bad in ("../../etc/passwd", "a/../../b", "x; rm -rf /", "/abs"):
        with pytest.raises(ActionFailed, match="is not a file of the stanza's backups"):
            kb.ops.read_backup_bytes(bad, 0, 1)
    with pytest.raises(ActionFailed, match="not a pgBackRest backup label"):
        kb.ops.backup_files("x; rm -rf /")
    assert kb.ops.backup_files("20261207-201299F") == {}
    ctx.stash[backup.PGBR_BACKUP_KEY] = {"label": "20261207-201299F", "type": "full"}
    with pytest.raises(ActionFailed, match="no data file in backup 20261207-201299F"):
        backup.corrupt_backup_file(ctx)


def test_pitr_restores_with_pgbackrest_into_the_restore_pod(kb: Kb) -> None:
    from drillrunner.audit import Resource, evaluate

    ctx, undos = ctx_for(kb.t)
    backup.pgbackrest_backup(ctx, type=pgbr.BackupType.FULL)
    label = ctx.stash[backup.PGBR_BACKUP_KEY]["label"]
    backup.mark_restore_point(ctx)
    result = backup.restore_pitr(ctx, timeout=5.0)
    assert result.detail["method"] == "pgbackrest" and result.detail["backup"] == label
    assert "restore_failed" not in result.detail, result.detail
    assert isinstance(result.measurements["rto_seconds"], float)
    assert undos == [("timescaledb.remove_pitr_member", {})]
    got = [json.loads(line) for line in (kb.roots["bin"] / "log").read_text().splitlines()]
    restore = [[a.replace(str(kb.roots[kp.PITR]), DATA) for a in args]
               for pod_name, args in got if pod_name == kp.PITR]
    assert [a[0] for a in restore] == [f"--config={CONF}"]  # run by the script, quoted
    restore = [["pgbackrest", *a] for a in restore]
    assert restore == [[*BASE, f"--pg1-path={kp.PGDATA}", "--type=time", f"--target={TARGET}",
                        "--target-action=promote", "--archive-mode=off", f"--set={label}",
                        "restore"]]
    data = kb.roots[kp.PITR] / "data"
    assert sorted(p.name for p in data.iterdir()) == [
        "PG_VERSION", "base", "postgresql.auto.conf", "recovery.signal"]  # no standby.signal
    assert (kb.roots[kp.PITR] / "drill-restored").exists()

    body = [c[1][1] for c in kb.world.c.calls if c[0] == "create_namespaced_pod"][-1]
    spec, c = body["spec"], body["spec"]["containers"][0]
    assert f"restore_command={kind_backup.archive_get_command()}" in c["args"]
    assert kind_backup.archive_get_command() == (
        f'pgbackrest --config={CONF} --stanza=timescaledb archive-get %f "%p"')
    assert f"recovery_target_time={TARGET}" in c["args"] and "archive_mode=off" in c["args"]
    assert {"name": "pgbackrest", "mountPath": REPO, "readOnly": True} in c["volumeMounts"]
    assert {"name": "pgbackrest-config", "mountPath": "/etc/pgbackrest",
            "readOnly": True} in c["volumeMounts"]
    cm = next(v for v in spec["volumes"] if v["name"] == "pgbackrest-config")["configMap"]
    assert cm["name"] == "timescaledb-patroni" and cm["items"][0]["key"] == "pgbackrest.conf"
    node = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert node["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["drill-worker"]
    assert body["metadata"]["annotations"] == {"drill.dev/pgbackrest-source": P}
    assert spec["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    found = [f.message for r in evaluate([Resource("Pod", "drill", kp.PITR, body, "restore")])
             for f in r.findings]
    assert found == []

    assert backup.remove_pitr_member(ctx).summary == f"removed {kp.PITR}"
    assert kp.PITR not in kb.world.c.pods


def test_pitr_restore_failures_name_the_pod(kb: Kb) -> None:
    ops = kb.ops
    with pytest.raises(ActionFailed, match="not a pgBackRest backup label"):
        ops.pgbackrest_restore(TARGET, "latest; rm -rf /")
    ops.ensure_stanza()
    with pytest.raises(ActionFailed, match=rf"{kp.PITR}: pgbackrest restore from {P}'s "
                       r"repository into .*exit 75.*20261207-201299F is not valid"):
        ops.pgbackrest_restore(TARGET, "20261207-201299F")
    assert not (kb.roots[kp.PITR] / "drill-restored").exists()  # the gate stays shut
    assert ops.remove_member(kp.PITR) is True


def test_the_restore_script_refuses_a_released_pod(tmp_path: Path) -> None:
    script = kind_backup.restore_script(TARGET, None)
    assert "--set" not in script and f"'--target={TARGET}'" in script
    gate = tmp_path / "drill-restored"
    gate.touch()
    done = subprocess.run(["sh", "-c", script.replace(kp.PITR_GATE, str(gate))],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "already released" in done.stderr


class LocalRepo(PgBackRestBackups):
    """The local adapter's repository files, without a stack (root only)."""

    def __init__(self, root: Path) -> None:
        self.root = root


def test_the_local_adapter_edits_its_repository_files_the_same_way(tmp_path: Path) -> None:
    local = LocalRepo(tmp_path)
    label = "20261207-201212F"
    top = local.backup_repo() / "backup" / pgbr.STANZA
    for rel, size in (("base/1/2838.lz4", 9000), ("base/5/2840.lz4", 9000),
                      ("base/1/1259.lz4", 10)):
        (top / label / "pg_data" / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / label / "pg_data" / rel).write_bytes(bytes(range(256)) * (size // 256) +
                                                     bytes(size % 256))
    (top / label / "pg_data" / "PG_VERSION").write_text("15")
    files = local.backup_files(label)
    assert files == {f"{label}/pg_data/base/1/2838.lz4": 9000,
                     f"{label}/pg_data/base/5/2840.lz4": 9000,
                     f"{label}/pg_data/base/1/1259.lz4": 10}
    rel = f"{label}/pg_data/base/5/2840.lz4"
    before = (top / rel).read_bytes()
    assert local.read_backup_bytes(rel, 4492, 16) == before[4492:4508]
    local.write_backup_bytes(rel, 4492, b"\xff" * 16)
    after = (top / rel).read_bytes()
    assert after == before[:4492] + b"\xff" * 16 + before[4508:]
    assert local.read_backup_bytes(f"{label}/pg_data/base/9/none", 0, 1) is None
    assert local.backup_files("20261207-201299F") == {}

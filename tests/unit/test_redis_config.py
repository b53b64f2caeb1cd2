"""Config files and parsing of the Redis local deployment (no server needed)."""

from __future__ import annotations

from pathlib import Path

from drillrunner.services.redis.local import RedisDeployment
from drillrunner.services.redis.spec import RedisSettings
from drillrunner.services.redis.topology import replica_lag_bytes
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.local.supervisor import Supervisor


def deployment(tmp_path: Path, appendonly: bool = True) -> RedisDeployment:
    settings = StackSettings(port_base=19000, redis=RedisSettings(appendonly=appendonly))
    return RedisDeployment(settings, tmp_path, Supervisor(tmp_path))


def test_server_config_follows_settings(tmp_path: Path) -> None:
    d = deployment(tmp_path)
    d.prepare_server("redis-1", d.servers()[0])
    text = d.conf_path("redis-1").read_text()
    assert "appendonly yes" in text and "appendfsync everysec" in text
    assert "replicaof 127.0.0.1 19010" in text and "bind 127.0.0.1" in text
    broken = deployment(tmp_path, appendonly=False)
    broken.prepare_server("redis-0", None)
    text = broken.conf_path("redis-0").read_text()
    assert "appendonly no" in text and 'save ""' in text and "replicaof" not in text


def test_sentinel_keeps_learned_state_only_for_the_same_master(tmp_path: Path) -> None:
    d = deployment(tmp_path)
    r0, r1 = d.servers()
    d.prepare_sentinel("sentinel-0", r0)
    path = d.conf_path("sentinel-0")
    path.write_text(path.read_text() + "sentinel myid abc\nsentinel known-replica drill "
                    "127.0.0.1 19011\nsentinel known-sentinel drill 127.0.0.1 19021 def\n")
    d.prepare_sentinel("sentinel-0", r0)
    assert "known-sentinel" in path.read_text() and "myid abc" in path.read_text()
    d.prepare_sentinel("sentinel-0", r1)  # the master moved: forget the old topology
    text = path.read_text()
    assert "monitor drill 127.0.0.1 19011 2" in text
    assert "known-sentinel" not in text and "myid abc" in text
    d.prepare_sentinel("sentinel-0", r1, fresh=True)
    assert "myid" not in path.read_text()


def test_master_from_sentinel_files_prefers_the_newest_epoch(tmp_path: Path) -> None:
    d = deployment(tmp_path)
    assert d.current_master().name == "redis-0"  # nothing runs, no files: the default
    r0, r1 = d.servers()
    d.prepare_sentinel("sentinel-0", r0)
    d.prepare_sentinel("sentinel-1", r1)
    p = d.conf_path("sentinel-1")
    p.write_text(p.read_text() + "sentinel config-epoch drill 3\n")
    assert d.current_master().name == "redis-1"


def test_replica_lag_bytes() -> None:
    info = {"master_repl_offset": 1000,
            "slave0": {"ip": "127.0.0.1", "port": 19011, "state": "online", "offset": 900}}
    assert replica_lag_bytes(info) == 100
    assert replica_lag_bytes({"master_repl_offset": 5}) is None

"""The local Kafka deployment's pure parts: jar cache, cluster ids, config, POM pin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drillrunner.core.errors import MissingBinary
from drillrunner.services.kafka import local as local_kafka
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.local.supervisor import Supervisor


def test_pom_default_version_matches_the_pin() -> None:
    pom = local_kafka.POM.read_text()
    assert re.search(rf"<kafka.version>{re.escape(local_kafka.KAFKA_VERSION)}</kafka.version>",
                     pom)


def test_missing_jars_name_the_fetch_command(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRILL_CACHE_DIR", str(tmp_path / "empty-cache"))
    with pytest.raises(MissingBinary, match=r"services\.kafka\.local fetch"):
        local_kafka.check_jars()


def test_cluster_ids_look_like_kafkas() -> None:
    for _ in range(200):
        cid = local_kafka.random_cluster_id()
        assert len(cid) == 22 and not cid.startswith("-")
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cid)


def test_node_config_names_every_voter_and_the_settings(tmp_path: Path) -> None:
    settings = StackSettings(port_base=30000).with_overrides(["kafka.min_insync_replicas=1"])
    dep = local_kafka.KafkaDeployment(settings, tmp_path, Supervisor(tmp_path))
    dep.write_config("kafka-1")
    text = dep.conf_path("kafka-1").read_text()
    assert "node.id=2\n" in text
    assert "controller.quorum.voters=1@127.0.0.1:30033,2@127.0.0.1:30034,3@127.0.0.1:30035" \
        in text
    assert "listeners=PLAINTEXT://127.0.0.1:30031,CONTROLLER://127.0.0.1:30034" in text
    assert "min.insync.replicas=1\n" in text
    assert "unclean.leader.election.enable=false\n" in text

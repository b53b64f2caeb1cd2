"""Patroni's configuration as drill renders it, the router's, and the split-brain reading of
a primary watch: pure functions, no server."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from drillrunner.services.timescaledb import ha, patroni, router


def test_roles_of_every_patroni_version() -> None:
    assert patroni.PatroniRole.of("master") is patroni.PatroniRole.LEADER  # Patroni 3
    assert patroni.PatroniRole.of("primary") is patroni.PatroniRole.LEADER  # Patroni 4
    assert patroni.PatroniRole.of("replica") is patroni.PatroniRole.REPLICA
    assert patroni.PatroniRole.of(None) is patroni.PatroniRole.UNKNOWN


def test_timings_predict_the_failover_and_enforce_patronis_rule() -> None:
    t = patroni.Timings(ttl=20, loop_wait=1, retry_timeout=4)
    assert t.predicted_failover() == (19.0, 21.0)
    assert t.problems() == []
    bad = patroni.Timings(ttl=20, loop_wait=13, retry_timeout=4)
    assert ["exceeds ttl" in p for p in bad.problems()] == [True]
    floors = patroni.Timings(ttl=10, loop_wait=1, retry_timeout=2).problems()
    assert [p.split(" (")[0] for p in floors] == ["ttl", "retry_timeout"]
    assert "Patroni would use 20" in floors[0]


def test_member_config_binds_loopback_and_names_the_dcs() -> None:
    dcs = patroni.dynamic_config(patroni.Timings(10, 1, 4), synchronous=True,
                                 maximum_lag=1048576, failsafe=False,
                                 parameters={"wal_level": "replica"})
    conf = patroni.member_config(
        name="tsdb-0", api_port=17003, pg_port=17000, etcd_hosts=["127.0.0.1:17070"],
        data_dir="/s/tsdb-0", bin_dir="/usr/lib/postgresql/15/bin", sockets="/s/sock",
        pgpass="/s/p", dcs=dcs, local_parameters={"archive_mode": "on"})
    text = yaml.safe_dump(conf)
    assert "0.0.0.0" not in text and "password" not in text
    assert conf["restapi"]["listen"] == "127.0.0.1:17003"
    assert conf["postgresql"]["listen"] == "127.0.0.1:17000"
    assert conf["etcd3"] == {"hosts": ["127.0.0.1:17070"]}
    boot = conf["bootstrap"]["dcs"]
    assert boot["synchronous_mode"] is True and boot["maximum_lag_on_failover"] == 1048576
    assert boot["postgresql"]["use_pg_rewind"] is True
    assert conf["postgresql"]["parameters"]["archive_mode"] == "on"


def test_the_router_checks_patronis_primary_endpoint() -> None:
    text = router.haproxy_config(17005, [("tsdb-0", 17000, 17003), ("tsdb-1", 17001, 17004)])
    assert "bind 127.0.0.1:17005" in text
    assert "option httpchk GET /primary" in text
    assert "server tsdb-1 127.0.0.1:17001 check port 17004" in text
    assert "on-marked-down shutdown-sessions" in text


def test_reigns_and_second_primaries() -> None:
    a, b = "tsdb-0", "tsdb-1"
    acks = [ha.Ack(a, 0, 1), ha.Ack(a, 1, 2), ha.Ack(b, 5, 6), ha.Ack(b, 6, 7)]
    assert [(r.member, r.acks) for r in ha.reigns(acks)] == [(a, 2), (b, 2)]
    assert ha.second_primaries(acks) == []  # one failover: a clean hand-over
    back = [*acks, ha.Ack(a, 7, 8)]
    assert [(r.member, r.acks) for r in ha.second_primaries(back)] == [(a, 1)]
    # Completion order decides, not the order they were recorded in.
    assert ha.second_primaries(list(reversed(acks))) == []


def test_the_patroni_binary_is_the_pinned_one_or_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drillrunner.core.errors import MissingBinary
    from drillrunner.services.timescaledb import patroni_install

    monkeypatch.setenv("DRILL_PATRONI_HOME", str(tmp_path / "none"))
    with pytest.raises(MissingBinary, match=r"Patroni 4\.1\.5 not found .* run 'make deps'"):
        patroni_install.patroni_binary()
    assert patroni_install.patroni_binary("/bin/true") == "/bin/true"
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(MissingBinary, match=r"timescaledb\.patroni=.*plain is not"):
        patroni_install.patroni_binary(str(plain))
    exe = tmp_path / "none" / "bin" / "patroni"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert patroni_install.patroni_binary() == str(exe)

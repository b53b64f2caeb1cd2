"""The OMS deployment's config files and the simulation guard (no server needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from drillrunner.services.oms.local import OmsDeployment
from drillrunner.services.oms.spec import OmsSettings
from drillrunner.stack.settings import StackSettings
from drillrunner.targets.local.supervisor import Supervisor
from orderservice import config
from orderservice.guard import REFUSAL, refusal


def deployment(tmp_path: Path, **oms: object) -> OmsDeployment:
    settings = StackSettings(port_base=24000, oms=OmsSettings.model_validate(oms))
    return OmsDeployment(settings, tmp_path, Supervisor(tmp_path))


def write(d: OmsDeployment, **overrides: object) -> Path:
    files = d._files("oms-0", d._settings(dict(overrides)))
    d.member_dir("oms-0").mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text)
    return d.config_files("oms-0")[0]


def test_files_follow_the_settings_and_load_back(tmp_path: Path) -> None:
    d = deployment(tmp_path, kill_switch_fail_closed=False, circuit_breaker=False)
    oms, switch, breakers = config.load(write(d))
    assert oms.port == 24060 and oms.host == "127.0.0.1"
    assert "target_session_attrs=read-write" in oms.postgres_dsn
    assert "port=24000,24001" in oms.postgres_dsn
    assert oms.redis.sentinels == [("127.0.0.1", 24020), ("127.0.0.1", 24021),
                                   ("127.0.0.1", 24022)]
    assert switch.default is config.SwitchState.ENGAGED and switch.fail_closed is False
    assert breakers.postgres.enabled is False and breakers.postgres.failure_threshold == 3
    text = (tmp_path / "oms" / "oms-0" / "kill-switch.yaml").read_text()
    assert yaml.safe_load(text)["redis_key"] == config.KILL_SWITCH_KEY


def test_overrides_change_only_what_they_name(tmp_path: Path) -> None:
    d = deployment(tmp_path, simulation_guard=False)
    oms, _, _ = config.load(write(d, environment="production", simulation=True))
    assert (oms.environment, oms.simulation, oms.simulation_guard) == ("production", True, False)


def test_settings_change_the_fingerprint(tmp_path: Path) -> None:
    a = deployment(tmp_path)
    b = deployment(tmp_path, kill_switch_default="disengaged")
    fa = a._fingerprint(a._files("oms-0", a._settings(None)))
    fb = b._fingerprint(b._files("oms-0", b._settings(None)))
    assert fa != fb
    assert fa == a._fingerprint(a._files("oms-0", a._settings(None)))


def test_no_secret_on_the_command_line(tmp_path: Path) -> None:
    argv = deployment(tmp_path).spec("oms-0").argv
    assert argv[1:4] == ["-m", "orderservice", "--config"]
    assert not any("host=" in a or "port=" in a for a in argv)


def test_guard_refuses_simulation_in_production_only(tmp_path: Path) -> None:
    d = deployment(tmp_path)
    prod_sim, _, _ = config.load(write(d, environment="production", simulation=True))
    reason = refusal(prod_sim)
    assert reason is not None and reason.startswith(REFUSAL)
    staging_sim, _, _ = config.load(write(d, environment="staging", simulation=True))
    assert refusal(staging_sim) is None
    unguarded = prod_sim.model_copy(update={"simulation_guard": False})
    assert refusal(unguarded) is None


def test_kubernetes_layout_loads_settings_laid_over_the_secret(tmp_path: Path) -> None:
    """deploy/k8s/oms: oms.yaml (rendered from the template into a Secret) names
    `settings_file`, the ConfigMap oms-settings, whose values win; the files it names are
    the two other ConfigMaps. Loaded exactly as the pods load them."""
    root = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "oms" / "configmaps.yaml"
    data = {d["metadata"]["name"]: d["data"] for d in yaml.safe_load_all(root.read_text())}
    mounts = {"/etc/oms/settings/settings.yaml": data["oms-settings"]["settings.yaml"],
              "/etc/oms/kill-switch/kill-switch.yaml": data["oms-kill-switch"]["kill-switch.yaml"],
              "/etc/oms/circuit-breakers/circuit-breakers.yaml":
                  data["oms-circuit-breakers"]["circuit-breakers.yaml"]}
    main = data["oms-config-template"]["oms.yaml"].replace("{{ .password }}", "pw")
    for path, text in mounts.items():
        main = main.replace(path, str(tmp_path / Path(path).name))
        (tmp_path / Path(path).name).write_text(text)
    (tmp_path / "oms.yaml").write_text(main)
    oms, switch, breakers = config.load(tmp_path / "oms.yaml")
    assert oms.environment == "production" and oms.simulation is False
    assert oms.simulation_guard is True and oms.port == 8080
    assert switch.default is config.SwitchState.ENGAGED and breakers.postgres.enabled
    (tmp_path / "settings.yaml").write_text("environment: production\nsimulation: true\n")
    assert config.load(tmp_path / "oms.yaml")[0].simulation is True  # the overlay wins

import os
import stat
import tomllib
from pathlib import Path

import pytest

from agent.config import (
    AgentConfig,
    ConfigError,
    default_config_path,
    dumps,
    load_config,
    save_config,
    spool_path,
)


def test_missing_file_gives_defaults(tmp_path: Path):
    cfg = load_config(tmp_path / "none.toml", environ={})
    assert cfg == AgentConfig()
    assert cfg.interval_s == 300.0
    assert cfg.latency_samples == 5
    assert not cfg.enrolled


def test_save_then_load_round_trips_with_mode_0600(tmp_path: Path):
    path = tmp_path / "sub" / "agent.toml"
    cfg = AgentConfig(collector_url="http://127.0.0.1:8000", agent_id="a1",
                      credential='s3cr"et\\\n', site="Sité ☃ 😀", room="IT suite",
                      targets=["https://a.example", "b.example:443"], interval_s=60.0,
                      icmp=False)
    save_config(path, cfg)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(path, environ={}) == cfg
    assert load_config(path, environ={}).enrolled
    assert [p.name for p in path.parent.iterdir()] == ["agent.toml"]  # no temp left


def test_dumps_is_valid_toml_for_every_field():
    data = tomllib.loads(dumps(AgentConfig(targets=["x"])))
    assert set(data) == set(AgentConfig.__dataclass_fields__)
    assert data["targets"] == ["x"]


def test_environment_overrides_file(tmp_path: Path):
    path = tmp_path / "agent.toml"
    path.write_text('interval_s = 300\nroom = "A"\n')
    cfg = load_config(path, environ={"CLASSPROBE_INTERVAL_S": "60",
                                     "CLASSPROBE_TARGETS": "https://x.test, y.test:443,",
                                     "CLASSPROBE_ICMP": "no", "CLASSPROBE_LATENCY_SAMPLES": "3"})
    assert cfg.interval_s == 60.0
    assert cfg.room == "A"
    assert cfg.targets == ["https://x.test", "y.test:443"]
    assert cfg.icmp is False
    assert cfg.latency_samples == 3


def test_int_in_file_for_float_field_is_accepted(tmp_path: Path):
    path = tmp_path / "agent.toml"
    path.write_text("interval_s = 30\n")
    assert load_config(path, environ={}).interval_s == 30.0


@pytest.mark.parametrize(("content", "message"), [
    ("intervall_s = 3\n", "unknown key 'intervall_s'"),
    ('interval_s = "soon"\n', "key 'interval_s' has bad value 'soon': expected a number"),
    ("interval_s = -5\n", "key 'interval_s' has bad value -5: expected a positive number"),
    ("latency_samples = 2.5\n", "key 'latency_samples' has bad value 2.5: expected an integer"),
    ("targets = \"a\"\n", "key 'targets' has bad value 'a': expected a list of strings"),
    ("icmp = 1\n", "key 'icmp' has bad value 1: expected true or false"),
    ("room = [\n", "not valid TOML"),
])
def test_file_errors_name_file_key_and_value(tmp_path: Path, content: str, message: str):
    path = tmp_path / "agent.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_env_errors_name_the_variable(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"environment CLASSPROBE_TIMEOUT_S: key 'timeout_s' "
                                          r"has bad value 'x': expected a number"):
        load_config(tmp_path / "none.toml", environ={"CLASSPROBE_TIMEOUT_S": "x"})
    with pytest.raises(ConfigError, match="CLASSPROBE_BANDWIDTH: .* 'maybe'"):
        load_config(tmp_path / "none.toml", environ={"CLASSPROBE_BANDWIDTH": "maybe"})


def test_default_path_and_spool_location(tmp_path: Path):
    assert default_config_path({"CLASSPROBE_AGENT_CONFIG": str(tmp_path / "c.toml")}) == \
        tmp_path / "c.toml"
    assert default_config_path({}) == Path(os.path.expanduser("~/.config/classprobe/agent.toml"))
    assert spool_path(AgentConfig(), tmp_path / "c.toml") == tmp_path / "spool"
    assert spool_path(AgentConfig(spool_dir=str(tmp_path / "s")), tmp_path / "c.toml") == \
        tmp_path / "s"


def test_cadence_and_guardrail_defaults(tmp_path: Path):
    cfg = load_config(tmp_path / "none.toml", environ={})
    assert (cfg.passive_interval_s, cfg.interval_s, cfg.path_interval_s,
            cfg.bandwidth_interval_s, cfg.inventory_interval_s) == (
        60.0, 300.0, 1800.0, 3600.0, 86400.0)
    assert (cfg.idle_factor, cfg.jitter) == (5.0, 0.2)
    assert (cfg.daily_byte_budget, cfg.busy_cpu_pct, cfg.pause_on_battery) == (
        2_000_000_000, 80.0, True)
    assert (cfg.watchdog_max_rss_mb, cfg.watchdog_max_cpu_pct) == (150.0, 5.0)


def test_cadence_and_guardrail_keys_from_file_and_environment(tmp_path: Path):
    path = tmp_path / "agent.toml"
    path.write_text("jitter = 0\ndaily_byte_budget = 0\nbusy_cpu_pct = 100\n"
                    "pause_on_battery = false\nidle_factor = 2.5\n")
    cfg = load_config(path, environ={"CLASSPROBE_PASSIVE_INTERVAL_S": "30",
                                     "CLASSPROBE_JITTER": "0.5"})
    assert (cfg.jitter, cfg.daily_byte_budget, cfg.busy_cpu_pct) == (0.5, 0, 100.0)
    assert (cfg.pause_on_battery, cfg.idle_factor, cfg.passive_interval_s) == (
        False, 2.5, 30.0)
    save_config(path, cfg)
    assert load_config(path, environ={}) == cfg


@pytest.mark.parametrize(("content", "message"), [
    ("jitter = 1\n", "key 'jitter' has bad value 1: expected a fraction from 0 up to "
                     "(not including) 1"),
    ("jitter = -0.1\n", "key 'jitter' has bad value -0.1: expected a fraction"),
    ("daily_byte_budget = -1\n", "key 'daily_byte_budget' has bad value -1: expected 0 "
                                 "(no limit) or a positive number of bytes"),
    ("daily_byte_budget = 1.5e9\n", "key 'daily_byte_budget' has bad value 1500000000.0: "
                                    "expected an integer"),
    ("busy_cpu_pct = 0\n", "key 'busy_cpu_pct' has bad value 0: expected a percentage "
                           "above 0, at most 100"),
    ("busy_cpu_pct = 101\n", "key 'busy_cpu_pct' has bad value 101: expected a percentage"),
    ("watchdog_max_cpu_pct = 150\n", "key 'watchdog_max_cpu_pct' has bad value 150"),
    ("watchdog_max_rss_mb = 0\n", "key 'watchdog_max_rss_mb' has bad value 0: expected a "
                                  "positive number"),
    ("idle_factor = 0\n", "key 'idle_factor' has bad value 0: expected a positive number"),
    ("passive_interval_s = -60\n", "key 'passive_interval_s' has bad value -60"),
    ("bandwidth_interval_s = 0\n", "key 'bandwidth_interval_s' has bad value 0"),
    ("pause_on_battery = \"no\"\n", "key 'pause_on_battery' has bad value 'no': expected "
                                    "true or false"),
])
def test_cadence_and_guardrail_errors(tmp_path: Path, content: str, message: str):
    path = tmp_path / "agent.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={})
    assert message in str(err.value)


def test_jitter_from_environment_is_range_checked(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"environment CLASSPROBE_JITTER: key 'jitter' has "
                                          r"bad value '1\.0': expected a fraction"):
        load_config(tmp_path / "none.toml", environ={"CLASSPROBE_JITTER": "1.0"})

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_config, save_config
from tests.agent.standin import CREDENTIAL, SITE_SALT, TOKEN, StandInServer

ROOT = Path(__file__).resolve().parents[2]


def enrolled_config(tmp_path: Path, server_url: str, **extra: object) -> Path:
    path = tmp_path / "agent.toml"
    assert main(["agent", "enroll", "--collector", server_url, "--token", TOKEN,
                 "--room", "IT suite", "--config", str(path)]) == 0
    cfg = load_config(path, environ={})
    for key, value in extra.items():
        setattr(cfg, key, value)
    save_config(path, cfg)
    return path


def test_enroll_saves_the_credential_privately_and_never_prints_it(
        tmp_path: Path, server: StandInServer, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "conf" / "agent.toml"
    code = main(["agent", "enroll", "--collector", server.url + "/", "--token", TOKEN,
                 "--room", "IT suite", "--config", str(path)])
    out = capsys.readouterr()
    assert code == 0
    assert "agent agent-1 in site 'Test School', room 'IT suite'" in out.out
    assert CREDENTIAL not in out.out + out.err
    assert TOKEN not in path.read_text()
    cfg = load_config(path, environ={})
    assert (cfg.collector_url, cfg.agent_id, cfg.credential, cfg.room, cfg.site_salt) == \
        (server.url, "agent-1", CREDENTIAL, "IT suite", SITE_SALT)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_enroll_with_a_bad_token(tmp_path: Path, server: StandInServer,
                                 capsys: pytest.CaptureFixture[str]):
    code = main(["agent", "enroll", "--collector", server.url, "--token", "nope", "--room", "R",
                 "--config", str(tmp_path / "a.toml")])
    assert code == 2
    assert "refused the enrolment token (401): unknown enrolment token" in capsys.readouterr().err
    assert not (tmp_path / "a.toml").exists()


def test_once_measures_spools_and_uploads(tmp_path: Path, server: StandInServer,
                                         capsys: pytest.CaptureFixture[str]):
    path = enrolled_config(tmp_path, server.url, bandwidth=False)
    capsys.readouterr()
    assert main(["agent", "once", "--config", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    report_id = out["report"]["report_id"]
    assert out["upload"]["ok"] is True and out["upload"]["accepted"] == 1
    assert out["upload"]["pending"] == 0
    stored = server.state.stored[report_id]
    probes = [(r["probe"], r["status"]) for r in stored["results"]]
    assert ("device", "ok") in probes
    assert ("latency", "ok") in probes
    assert ("bandwidth", "skipped") in probes
    latency = next(r for r in stored["results"] if r["probe"] == "latency")
    assert latency["target"] == server.url + "/speed/ping"
    assert list((tmp_path / "spool" / "pending").iterdir()) == []


def test_once_with_the_collector_down_keeps_the_report(
        tmp_path: Path, server: StandInServer, closed_port: int,
        capsys: pytest.CaptureFixture[str]):
    path = enrolled_config(tmp_path, server.url, bandwidth=False, icmp=False,
                           collector_url=f"http://127.0.0.1:{closed_port}")
    capsys.readouterr()
    assert main(["agent", "once", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "not uploaded: collector unreachable: ConnectError" in out
    assert "1 report(s) stay spooled" in out
    assert len(list((tmp_path / "spool" / "pending").iterdir())) == 1
    # the collector comes back: the next run delivers both reports
    cfg = load_config(path, environ={})
    cfg.collector_url = server.url
    cfg.passive_interval_s = 0.5  # the first passive sample comes at once, not up to 60 s in
    save_config(path, cfg)
    assert main(["agent", "run", "--cycles", "1", "--config", str(path)]) == 0
    assert len(server.state.stored) == 2
    assert list((tmp_path / "spool" / "pending").iterdir()) == []


def test_once_without_enrolment(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["agent", "once", "--config", str(tmp_path / "none.toml")]) == 2
    assert "has no enrolment; run `classprobe agent enroll" in capsys.readouterr().err


def test_config_error_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "agent.toml"
    path.write_text("interval_s = -1\n")
    assert main(["agent", "once", "--config", str(path)]) == 2
    assert f"{path}: key 'interval_s' has bad value -1" in capsys.readouterr().err


def test_probe_latency_json_shape(server: StandInServer, capsys: pytest.CaptureFixture[str]):
    code = main(["probe", "latency", f"127.0.0.1:{server.port}", "--count", "3", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    [latency, icmp] = out["results"]
    assert set(latency) == {"probe", "target", "status", "reason", "started_at", "finished_at",
                            "measurements"}
    assert (latency["probe"], latency["target"], latency["status"]) == \
        ("latency", f"127.0.0.1:{server.port}", "ok")
    tcp = [m for m in latency["measurements"] if m["metric"] == "tcp_connect_ms"]
    assert [(m["stat"], m["unit"], m["method"], m["samples"]) for m in tcp] == [
        ("min", "ms", "tcp_connect", 3), ("p50", "ms", "tcp_connect", 3),
        ("p95", "ms", "tcp_connect", 3), ("max", "ms", "tcp_connect", 3)]
    assert (icmp["probe"], icmp["target"]) == ("icmp", "127.0.0.1")
    assert icmp["status"] in ("ok", "skipped")


def test_probe_latency_failure_exit_code(closed_port: int, capsys: pytest.CaptureFixture[str]):
    assert main(["probe", "latency", f"127.0.0.1:{closed_port}", "--no-icmp"]) == 1
    assert "failed: Connection refused" in capsys.readouterr().out


def test_probe_bandwidth_text(server: StandInServer, capsys: pytest.CaptureFixture[str]):
    server.state.rate_bps = 50e6
    assert main(["probe", "bandwidth", "--collector", server.url, "--seconds", "3",
                 "--streams", "1"]) == 0
    out = capsys.readouterr().out
    assert "download_mbps" in out and "upload_mbps" in out


def test_probe_bandwidth_rejects_bad_numbers(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["probe", "bandwidth", "--url", "http://x", "--streams", "0"])
    assert "--streams must be positive, got 0" in capsys.readouterr().err


def test_importing_the_cli_loads_nothing_heavy():
    code = ("import sys, json, agent.cli\n"
            "print(json.dumps(sorted(m for m in sys.modules)))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout
    loaded = {m.split(".")[0] for m in json.loads(out)}
    assert not loaded & {"collector", "fastapi", "sqlmodel", "sqlalchemy", "pydantic", "scapy",
                         "httpx", "psutil", "speedtest"}


def test_probe_latency_interval_reaches_the_icmp_options(monkeypatch, capsys):
    import agent.probes.latency as latency

    seen = {}

    def fake_measure(targets, opts):
        seen.update(targets=targets, interval=opts.icmp_interval_s, samples=opts.samples)
        return []

    monkeypatch.setattr(latency, "measure", fake_measure)
    assert main(["probe", "latency", "10.77.10.1", "--count", "200", "--interval", "0.02",
                 "--json"]) == 0
    assert seen == {"targets": ["10.77.10.1"], "interval": 0.02, "samples": 200}
    with pytest.raises(SystemExit):
        main(["probe", "latency", "10.77.10.1", "--interval", "0"])
    assert "--interval must be positive, got 0" in capsys.readouterr().err

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main as agent_main
from agent.spool import Spool
from agent.state import take_flag_bursts
from classprobe.cli import main as classprobe_main
from tests.agent.standin import StandInServer, write_config


def spooled(config: Path) -> list[dict[str, Any]]:
    spool = Spool(config.parent / "spool")
    return [spool.load(item) for item in spool.pending()]


def test_flag_is_sent_and_this_pc_measures_at_once(tmp_path: Path, server: StandInServer,
                                                   capsys: pytest.CaptureFixture[str]):
    config = write_config(tmp_path, server.url)
    code = classprobe_main(["flag", "--note", "video froze", "--config", str(config),
                            "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    [flag] = server.state.flags
    assert flag["note"] == "video froze" and flag["created_at"].endswith("+00:00")
    assert (out["flag_id"], out["burst_job_id"], out["flag_error"]) == \
        (flag["flag_id"], flag["burst_job_id"], None)
    stored = server.state.stored[out["report_id"]]
    assert (stored["trigger"], stored["job_id"]) == ("burst", flag["burst_job_id"])
    probes = {r["probe"] for r in stored["results"]}
    assert {"load", "wifi", "latency"} <= probes and "bandwidth" not in probes
    assert out["upload"]["ok"] is True and spooled(config) == []
    # the supervisor will not run the same burst again
    assert take_flag_bursts(tmp_path / "spool") == [flag["burst_job_id"]]


def test_flag_text_output(tmp_path: Path, server: StandInServer,
                          capsys: pytest.CaptureFixture[str]):
    config = write_config(tmp_path, server.url)
    assert agent_main(["flag", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    [flag] = server.state.flags
    assert flag["note"] == ""
    assert f"flag {flag['flag_id']} raised for room 'Lab 1': the room's agents measure now" \
        in out
    assert "measuring this PC's network now" in out
    assert "measured here: report " in out
    assert f"uploaded to {server.url}" in out


def test_collector_down_the_burst_is_still_spooled_and_says_the_flag_was_not_sent(
        tmp_path: Path, closed_port: int, capsys: pytest.CaptureFixture[str]):
    config = write_config(tmp_path, f"http://127.0.0.1:{closed_port}")
    assert agent_main(["flag", "--note", "no sound", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    assert "classprobe flag: the flag could not be sent: collector unreachable: ConnectError" \
        in captured.err
    assert "the report stays spooled and is sent later; it records that the flag was not " \
        "sent" in captured.out
    [report] = spooled(config)
    assert (report["trigger"], report["job_id"]) == ("burst", None)
    flag = report["results"][0]
    assert (flag["probe"], flag["status"], flag["measurements"]) == ("flag", "failed", [])
    assert flag["reason"].startswith("the flag could not be sent to the collector "
                                     "(collector unreachable: ConnectError")
    assert flag["reason"].endswith("this burst was measured here at once; the note was: "
                                   "'no sound'")
    assert "latency" in [r["probe"] for r in report["results"]]
    assert take_flag_bursts(tmp_path / "spool") == []


def test_collector_error_is_named(tmp_path: Path, server: StandInServer,
                                  capsys: pytest.CaptureFixture[str]):
    server.state.flag_mode = "error500"
    config = write_config(tmp_path, server.url)
    assert agent_main(["flag", "--config", str(config), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["flag_error"] == "collector answered 500: database is down"
    assert out["flag_id"] is None and out["report_id"] is not None
    # the burst report itself was delivered: only the flag failed
    assert out["upload"]["ok"] is True and out["report_id"] in server.state.stored


def test_flag_needs_an_enrolled_agent(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert agent_main(["flag", "--config", str(tmp_path / "none.toml")]) == 2
    assert "has no enrolment" in capsys.readouterr().err

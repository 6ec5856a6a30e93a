"""The flag inbox: a teacher's `classprobe flag` without the service's credential."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.flag_inbox import (
    MAX_NOTE,
    drop_request,
    hand_to_service,
    inbox_of,
    parse_request,
    system_inbox,
    take_requests,
)
from agent.service import Supervisor
from classprobe.cli import main as classprobe_main
from tests.agent.standin import StandInServer, write_config

NOW = datetime(2026, 11, 27, 9, 7, tzinfo=UTC)


def test_requests_round_trip_oldest_first_and_bad_files_are_removed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    inbox = tmp_path / "flag-inbox"
    inbox.mkdir()
    first = drop_request(inbox, "  video froze  ", NOW)
    second = drop_request(inbox, "x" * (MAX_NOTE + 50), NOW)
    old = time.time() - 10
    import os

    os.utime(first, (old, old))
    (inbox / "flag-broken.json").write_text("{not json")
    (inbox / "flag-naive.json").write_text(json.dumps({"note": "", "created_at":
                                                        "2026-11-27T09:07:00"}))
    (inbox / "unrelated.txt").write_text("left alone")
    with caplog.at_level(logging.WARNING):
        got = take_requests(inbox)
    assert [r.note for r in got] == ["video froze", "x" * MAX_NOTE]
    assert all(r.created_at == NOW for r in got)
    assert sorted(p.name for p in inbox.iterdir()) == ["unrelated.txt"]
    assert "flag-broken.json ignored" in caplog.text
    assert "flag-naive.json ignored: created_at '2026-11-27T09:07:00' has no timezone" \
        in caplog.text
    assert take_requests(inbox) == [] and not second.exists()


def test_parse_request_names_the_bad_value() -> None:
    with pytest.raises(ValueError, match="note 5 is not a string"):
        parse_request('{"note": 5, "created_at": "2026-11-27T09:07:00+00:00"}')
    with pytest.raises(ValueError, match="expected a JSON object, got list"):
        parse_request("[]")


def test_the_system_inbox_is_in_the_service_state_dir() -> None:
    assert system_inbox("linux") == Path("/var/lib/classprobe/flag-inbox")
    assert inbox_of(Path("/var/lib/classprobe/spool")) == system_inbox("linux")


def test_a_teacher_without_a_config_hands_the_flag_to_the_service(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    inbox = tmp_path / "flag-inbox"
    inbox.mkdir()
    monkeypatch.setenv("CLASSPROBE_AGENT_CONFIG", str(tmp_path / "teacher" / "agent.toml"))
    monkeypatch.setenv("CLASSPROBE_FLAG_INBOX", str(inbox))
    assert classprobe_main(["flag", "--note", "Kahoot stuck", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"handed_to_service": str(inbox)}
    [request] = take_requests(inbox)
    assert request.note == "Kahoot stuck"
    assert abs((datetime.now(UTC) - request.created_at).total_seconds()) < 60


def test_hand_to_service_does_not_apply_with_an_own_config_or_no_inbox(
        tmp_path: Path, server: StandInServer) -> None:
    inbox = tmp_path / "flag-inbox"
    env = {"CLASSPROBE_AGENT_CONFIG": str(tmp_path / "none.toml"),
           "CLASSPROBE_FLAG_INBOX": str(inbox)}
    assert hand_to_service("n", env) == (None, None)  # no service inbox on this PC
    inbox.mkdir()
    config = write_config(tmp_path / "own", server.url)
    own = {**env, "CLASSPROBE_AGENT_CONFIG": str(config)}
    assert hand_to_service("n", own) == (None, None)  # a technician's own config: direct
    assert list(inbox.iterdir()) == []


def test_the_supervisor_sends_inbox_flags_with_its_credential(
        tmp_path: Path, server: StandInServer) -> None:
    config = write_config(tmp_path, server.url, passive_interval_s=1e6, interval_s=1e6,
                          path_interval_s=1e6, bandwidth_interval_s=1e6,
                          inventory_interval_s=1e6)
    inbox = inbox_of(tmp_path / "spool")
    inbox.mkdir()
    drop_request(inbox, "video froze", NOW)
    sup = Supervisor(config, wait=lambda s: False, max_runs=1, cpu_seconds=lambda: 0.0)
    sup.step()
    assert sup.runs == 1  # the flag command, run as the service
    [flag] = server.state.flags
    assert flag["note"] == "video froze"
    burst = [r for r in server.state.stored.values() if r["trigger"] == "burst"]
    assert [r["job_id"] for r in burst] == [flag["burst_job_id"]]
    assert list(inbox.iterdir()) == []

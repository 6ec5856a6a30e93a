from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.state import (
    MAX_DONE_JOBS,
    AgentState,
    load_state,
    save_state,
    state_path,
    take_flag_bursts,
    write_flag_burst,
)

CONTROL = {"server_time": "2026-10-05T09:04:30Z", "site": "S", "room": "R",
           "site_salt": "salt", "timetable": None, "poll_interval_s": 60,
           "jobs": [{"job_id": "j1", "kind": "burst", "start_at": "2026-10-05T09:04:00Z"}]}


def test_state_round_trips(tmp_path: Path):
    path = state_path(tmp_path / "spool")
    state = AgentState(control=CONTROL, polled_at=1_800_000_000.5, clock_offset_s=-2.25,
                       clock_uncertainty_s=0.125, done_jobs=["a", "b"])
    save_state(path, state)
    assert path == tmp_path / "spool" / "agent-state.json"
    assert load_state(path) == state
    assert path.stat().st_mode & 0o777 == 0o600
    control = load_state(path).parsed_control()
    assert control is not None and [j.job_id for j in control.jobs] == ["j1"]


def test_missing_file_is_a_fresh_state(tmp_path: Path):
    assert load_state(tmp_path / "none.json") == AgentState()


@pytest.mark.parametrize(("content", "why"), [
    ("{not json", "Expecting property name"),
    ("[1, 2]", "expected a JSON object, got list"),
    ('{"done_jobs": "j1"}', "done_jobs 'j1' is not a list of strings"),
    ('{"clock_offset_s": "fast"}', "clock_offset_s 'fast' is not a finite number"),
    ('{"control": 3}', "control 3 is not an object"),
])
def test_corrupt_file_is_a_fresh_state_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, content: str, why: str):
    path = tmp_path / "agent-state.json"
    path.write_text(content)
    with caplog.at_level(logging.WARNING, logger="agent.state"):
        assert load_state(path) == AgentState()
    assert f"agent state {path} is corrupt (" in caplog.text
    assert why in caplog.text
    assert "starting afresh" in caplog.text


def test_unusable_stored_control_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture):
    state = AgentState(control={**CONTROL, "jobs": "none"})
    with caplog.at_level(logging.WARNING, logger="agent.state"):
        assert state.parsed_control() is None
    assert "stored control answer unusable (control.jobs: expected a list, got 'none')" \
        in caplog.text


def test_done_jobs_are_bounded_and_unique():
    state = AgentState()
    state.mark_done(["j0", "j0"])
    assert state.done_jobs == ["j0"]
    state.mark_done(f"j{i}" for i in range(1, MAX_DONE_JOBS + 5))
    assert len(state.done_jobs) == MAX_DONE_JOBS
    assert state.done_jobs[0] == "j5" and state.done_jobs[-1] == f"j{MAX_DONE_JOBS + 4}"
    assert state.is_done("j100") and not state.is_done("j0")


def test_flag_bursts_are_handed_over_once(tmp_path: Path):
    assert take_flag_bursts(tmp_path) == []
    write_flag_burst(tmp_path, "burst-1")
    write_flag_burst(tmp_path, "burst-2")
    assert take_flag_bursts(tmp_path) == ["burst-1", "burst-2"]
    assert take_flag_bursts(tmp_path) == []
    (tmp_path / "flag-burst.json").write_text("garbage")
    assert take_flag_bursts(tmp_path) == []
    assert not (tmp_path / "flag-burst.json").exists()

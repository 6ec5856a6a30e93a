from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent import __version__
from agent.config import AgentConfig
from agent.control import ControlError, clock_offset, parse_control, parse_job, poll
from agent.wire import Job
from tests.agent.standin import CREDENTIAL, SITE_SALT, StandInServer


def control_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "server_time": "2026-10-05T09:04:30.250000Z", "site": "Test School",
        "room": "Lab 1", "site_salt": "salt", "timetable": {"timezone": "Europe/London"},
        "jobs": [{"job_id": "j1", "kind": "room_test", "start_at": "2026-10-05T09:05:00+00:00",
                  "duration_s": 20, "directions": ["download", "upload"],
                  "download_url": None, "upload_url": None, "streams": 4,
                  "reason": None},
                 {"job_id": "j2", "kind": "burst", "start_at": "2026-10-05T09:04:00Z",
                  "reason": "problem flagged at 09:04"}],
        "poll_interval_s": 30}
    doc.update(changes)
    return doc


def test_clock_offset_is_the_midpoint_estimate():
    assert clock_offset(1000.0, 1000.5, 1030.75) == (30.5, 0.25)
    assert clock_offset(1000.0, 1000.0, 990.0) == (-10.0, 0.0)
    server = datetime.fromtimestamp(1_800_000_002.0, UTC)
    assert clock_offset(1_800_000_000.0, 1_800_000_001.0, server) == (1.5, 0.5)


def test_clock_offset_leaves_out_the_collectors_handling_time():
    # the collector is 30 s ahead; each network leg takes 0.1 s; the database takes 2 s
    offset, uncertainty = clock_offset(1000.0, 1002.2, 1032.1, received_at=1030.1)
    assert offset == pytest.approx(30.0) and uncertainty == pytest.approx(0.1)
    # without received_at the 2 s of handling would be mistaken for network time
    assert clock_offset(1000.0, 1002.2, 1032.1) == pytest.approx((30.999999, 1.1), abs=1e-5)
    with pytest.raises(ValueError, match="server_time 9.0 is before received_at 10.0"):
        clock_offset(0.0, 20.0, 9.0, received_at=10.0)


def test_clock_offset_refuses_time_running_backwards():
    with pytest.raises(ValueError, match="t_recv 9.0 is before t_send 10.0"):
        clock_offset(10.0, 9.0, 10.0)


def test_parse_control_reads_every_field():
    control = parse_control(control_doc())
    assert control.server_time == datetime(2026, 10, 5, 9, 4, 30, 250000, UTC)
    assert (control.site, control.room, control.site_salt) == ("Test School", "Lab 1", "salt")
    assert control.timetable == {"timezone": "Europe/London"}
    assert control.poll_interval_s == 30.0
    assert control.jobs == [
        Job(job_id="j1", kind="room_test", start_at=datetime(2026, 10, 5, 9, 5, tzinfo=UTC),
            duration_s=20.0, directions=["download", "upload"], streams=4),
        Job(job_id="j2", kind="burst", start_at=datetime(2026, 10, 5, 9, 4, tzinfo=UTC),
            reason="problem flagged at 09:04")]


@pytest.mark.parametrize(("changes", "message"), [
    ({"server_time": "2026-10-05T09:04:30"},
     "control.server_time: '2026-10-05T09:04:30' has no timezone"),
    ({"server_time": "yesterday"}, "control.server_time: 'yesterday' is not an ISO 8601 time"),
    ({"poll_interval_s": "60"}, "control.poll_interval_s: expected a number, got '60'"),
    ({"poll_interval_s": 0}, "control.poll_interval_s: 0 is below 1"),
    ({"timetable": "P1"}, "control.timetable: expected an object or null, got 'P1'"),
    ({"jobs": {}}, "control.jobs: expected a list, got {}"),
    ({"site_salt": None}, "control.site_salt: expected a string, got None"),
    ({"jobs": [{"job_id": "j", "kind": "party", "start_at": "2026-10-05T09:05:00Z"}]},
     "control.jobs[0].kind: 'party' is not 'room_test' or 'burst'"),
    ({"jobs": [{"job_id": "j", "kind": "room_test", "start_at": "2026-10-05T09:05:00Z",
                "directions": ["sideways"]}]},
     "control.jobs[0].directions: ['sideways'] is not a list of download / upload"),
    ({"jobs": [{"job_id": "j", "kind": "room_test", "start_at": "2026-10-05T09:05:00Z"}]},
     "control.jobs[0].directions: a room test needs download or upload, got []"),
    ({"jobs": [{"job_id": "j", "kind": "burst", "start_at": "2026-10-05T09:05:00Z",
                "streams": 2.5}]},
     "control.jobs[0].streams: expected an integer, got 2.5"),
    ({"jobs": [{"job_id": "j", "kind": "burst", "start_at": "2026-10-05T09:05:00Z",
                "duration_s": -1}]},
     "control.jobs[0].duration_s: -1 is below 0"),
])
def test_parse_control_names_the_bad_field(changes: dict[str, Any], message: str):
    with pytest.raises(ControlError) as info:
        parse_control(control_doc(**changes))
    assert str(info.value) == message


def test_parse_control_reports_a_missing_field():
    doc = control_doc()
    del doc["server_time"]
    with pytest.raises(ControlError, match=r"^control.server_time: missing$"):
        parse_control(doc)
    with pytest.raises(ControlError, match=r"^control: expected an object, got \[\]$"):
        parse_control([])


def test_parse_job_by_itself():
    job = parse_job({"job_id": "b", "kind": "burst", "start_at": "2026-10-05T09:05:00+01:00"})
    assert job.start_at == datetime(2026, 10, 5, 8, 5, tzinfo=UTC)
    assert (job.duration_s, job.directions, job.streams) == (0.0, [], 4)


def config(url: str, **extra: Any) -> AgentConfig:
    return AgentConfig(collector_url=url, agent_id="agent-1", credential=CREDENTIAL,
                       timeout_s=2.0, **extra)


def test_poll_measures_the_stand_ins_clock_and_sends_the_headers(server: StandInServer):
    server.state.clock_skew_s = 30.0
    server.state.jobs = [{"job_id": "j1", "kind": "burst",
                          "start_at": "2026-10-05T09:04:00Z"}]
    first = poll(config(server.url))
    assert first.ok and first.control is not None and first.raw is not None
    assert first.offset_s is not None and first.uncertainty_s is not None
    assert abs(first.offset_s - 30.0) <= first.uncertainty_s + 0.05
    assert first.control.site_salt == SITE_SALT
    assert [j.job_id for j in first.control.jobs] == ["j1"]
    assert first.raw["jobs"] == server.state.jobs
    poll(config(server.url), first.offset_s)
    assert server.state.polls == [
        {"version": __version__, "offset": None},
        {"version": __version__, "offset": f"{first.offset_s:.3f}"}]


def test_poll_failures_are_results_not_exceptions(server: StandInServer, closed_port: int):
    wrong = AgentConfig(collector_url=server.url, agent_id="a", credential="nope")
    assert poll(wrong).error == "collector answered 401: unknown credential"
    server.state.control_mode = "error500"
    assert poll(config(server.url)).error == "collector answered 500: database is down"
    server.state.control_mode = "garbage"
    assert poll(config(server.url)).error == (
        "collector sent a control answer the agent cannot use: control.jobs: missing")
    down = poll(config(f"http://127.0.0.1:{closed_port}"))
    assert down.error is not None and down.error.startswith("collector unreachable: ")
    assert "refused" in down.error
    assert poll(AgentConfig()).error == "not enrolled: no collector to poll"


def test_poll_over_tls_uses_the_ca_bundle(tls_server: tuple[str, Path]):
    url, bundle = tls_server
    assert poll(config(url, ca_bundle=str(bundle))).ok
    untrusted = poll(config(url))
    assert untrusted.error is not None and "CERTIFICATE_VERIFY_FAILED" in untrusted.error
    missing = poll(config(url, ca_bundle="/nonexistent/ca.pem"))
    assert missing.error is not None
    assert missing.error.startswith("cannot load ca_bundle '/nonexistent/ca.pem': ")

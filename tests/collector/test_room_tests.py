"""Room tests: making one (service and API), its result from stored reports, capacity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from agent.wire import Measurement, ProbeResult
from collector.models import Agent, Job, utcnow
from collector.render import render_site_report
from collector.services.room_tests import (
    RoomTestConflict,
    RoomTestError,
    UnknownJob,
    UnknownRoom,
    create_room_test,
    latest_room_capacity,
    room_test_result,
)
from collector.services.site_report import build_site_report, report_dict
from collector.services.sites import get_site
from tests.collector.conftest import (
    SITE,
    T0,
    Enrolled,
    batch_body,
    count,
    enrol,
    make_report,
)
from tests.collector.room_rows import Run, add_job_report, new_agent, new_site

ROOM = "Room 12"
START = T0 + timedelta(minutes=2)
AFTER = START + timedelta(seconds=20 + 121)


def make_test(session: Session, **kw: object) -> Job:
    args: dict[str, object] = {"room_name": ROOM, "start_at": START, "duration_s": 20.0,
                               "directions": ["download"], "streams": 4,
                               "download_url": None, "upload_url": None, "now": T0}
    args.update(kw)
    return create_room_test(session, get_site(session, SITE), **args)  # type: ignore[arg-type]


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s


@pytest.fixture
def agents(session: Session) -> list[str]:
    """Two live agents in Room 12, one revoked, one silent for 20 min, one elsewhere."""
    token = new_site(session)
    live = [new_agent(session, token, ROOM, T0 - timedelta(minutes=m)) for m in (0, 14)]
    revoked = session.get(Agent, new_agent(session, token, ROOM, T0))
    assert revoked is not None
    revoked.revoked = True
    session.add(revoked)
    session.commit()
    new_agent(session, token, ROOM, T0 - timedelta(minutes=20))
    new_agent(session, token, "Room 14", T0)
    return sorted(live)


@pytest.mark.both_backends
def test_the_test_waits_for_the_rooms_live_agents(session: Session, agents: list[str]) -> None:
    job = make_test(session, directions=["upload", "download"])
    assert job.expected_agents == agents
    assert (job.kind, job.directions, job.start_at, job.duration_s) == (
        "room_test", "download,upload", START, 20.0)


@pytest.mark.both_backends
def test_result_from_stored_reports(session: Session, agents: list[str]) -> None:
    a, b = agents
    job = make_test(session)
    add_job_report(session, a, job.id, [Run("download", 30.0, p50=12.0, max=40.0)], START)
    add_job_report(session, b, job.id, [Run("download", 10.0, p50=20.0, max=90.0)], START,
                   clock_offset_s=0.5)
    add_job_report(session, b, "another-job", [Run("download", 500.0)], START)
    add_job_report(session, b, None, [Run("download", 700.0)], START, trigger="scheduled")
    r = room_test_result(session, job.id, AFTER)
    assert r.status == "complete"
    assert [(d.agent_id, d.mbps, d.share_pct) for d in r.devices] == [
        (a, 30.0, 75.0), (b, 10.0, 25.0)]
    assert r.total("download") == 40.0
    assert (r.totals[0].loaded_latency_p50_ms, r.totals[0].loaded_latency_max_ms) == (16.0, 90.0)
    assert r.start_skew_s == 0.5


@pytest.mark.both_backends
def test_a_failed_run_and_a_silent_agent_are_failures(session: Session,
                                                      agents: list[str]) -> None:
    a, b = agents
    job = make_test(session)
    add_job_report(session, a, job.id, [Run("download", status="failed",
                                            reason="transfer too short to be trusted")], START)
    r = room_test_result(session, job.id, AFTER)
    assert r.status == "incomplete"
    assert [(f.agent_id, f.direction, f.status, f.reason) for f in r.failures] == [
        (a, "download", "failed", "transfer too short to be trusted"),
        (b, None, "missing", f"agent {b} did not report")]
    assert r.total("download") is None


def test_bad_requests_name_every_bad_value(session: Session, agents: list[str]) -> None:
    with pytest.raises(RoomTestError) as info:
        make_test(session, start_at=T0 - timedelta(seconds=6), duration_s=301.0,
                  directions=["sideways"], streams=17, download_url="ftp://x/y",
                  upload_url="http://")
    assert info.value.problems == [
        f"start_at {(T0 - timedelta(seconds=6)).isoformat()} is 6 s in the past "
        f"(now {T0.isoformat()})",
        "duration_s 301 is outside 5..300 s",
        "directions ['sideways'] must be a non-empty subset of ['download', 'upload']",
        "streams 17 is outside 1..16",
        "download_url 'ftp://x/y' must be an http:// or https:// URL with a host",
        "upload_url 'http://' must be an http:// or https:// URL with a host",
    ]
    make_test(session, start_at=T0 - timedelta(seconds=4))  # within the 5 s tolerance
    with pytest.raises(RoomTestError, match=r"directions \[\] must be a non-empty"):
        make_test(session, directions=[])


def test_unknown_room_names_it_and_lists_the_rooms(session: Session,
                                                   agents: list[str]) -> None:
    with pytest.raises(UnknownRoom) as info:
        make_test(session, room_name="Room 99")
    assert str(info.value) == ("site 'Test School' has no room 'Room 99'; "
                               "its rooms: 'Room 12', 'Room 14'")


def test_no_live_agent_and_overlaps_are_refused(session: Session, agents: list[str]) -> None:
    with pytest.raises(RoomTestError, match="no agent in room 'Room 12' was seen in the last "
                                            "15 min"):
        make_test(session, now=T0 + timedelta(minutes=30), start_at=T0 + timedelta(minutes=31))
    first = make_test(session)
    with pytest.raises(RoomTestConflict, match=f"already has room test {first.id}"):
        make_test(session, start_at=START + timedelta(seconds=19))
    make_test(session, start_at=START + timedelta(seconds=20))  # back to back is fine
    # download 20 s, a 2 s gap, upload 20 s: the upload phase loads the link too
    both = make_test(session, start_at=START + timedelta(minutes=5),
                     directions=["download", "upload"])
    with pytest.raises(RoomTestConflict, match=f"already has room test {both.id}"):
        make_test(session, start_at=START + timedelta(minutes=5, seconds=41))
    make_test(session, start_at=START + timedelta(minutes=5, seconds=42))
    with pytest.raises(UnknownJob, match="no room test 'nope'"):
        room_test_result(session, "nope", AFTER)


@pytest.mark.both_backends
def test_capacity_is_the_latest_complete_test(session: Session, agents: list[str]) -> None:
    a, b = agents
    room_id = session.get(Agent, a).room_id  # type: ignore[union-attr]
    assert latest_room_capacity(session, room_id, AFTER) is None
    first = make_test(session)
    for agent, mbps in ((a, 30.0), (b, 10.0)):
        add_job_report(session, agent, first.id, [Run("download", mbps)], START)
    later = make_test(session, start_at=START + timedelta(minutes=5))
    add_job_report(session, a, later.id, [Run("download", 50.0)], START)  # b never reports
    cap = latest_room_capacity(session, room_id, AFTER + timedelta(minutes=10))
    assert cap is not None
    assert (cap.job_id, cap.download_mbps, cap.upload_mbps, cap.devices) == (
        first.id, 40.0, None, 2)

    site = get_site(session, SITE)
    report = build_site_report(session, site, [], AFTER + timedelta(minutes=10))
    assert report_dict(report)["room_capacity"] == [
        {"room": ROOM, "job_id": first.id, "measured_at": START.isoformat(),
         "download_mbps": 40.0, "upload_mbps": None, "devices": 2}]
    page = render_site_report(report)
    assert "Room capacity (measured)" in page and "<td>40 Mbps</td>" in page
    assert "not measured" in page  # upload: never a made-up 0


# --- the API ------------------------------------------------------------------------------

def url(room: str = ROOM) -> str:
    return f"/api/v1/sites/{SITE}/rooms/{room}/tests"


@pytest.mark.both_backends
def test_api_makes_a_test_and_reads_its_result(client: TestClient, enrolled: Enrolled,
                                               admin_headers: dict[str, str]) -> None:
    resp = client.post(url(), json={"start_in_s": 30, "duration_s": 10,
                                    "directions": ["download", "upload"], "streams": 2},
                       headers=admin_headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["kind"] == "room_test"
    assert (body["room"], body["site"], body["duration_s"], body["streams"]) == (
        ROOM, SITE, 10.0, 2)
    assert body["directions"] == ["download", "upload"]
    assert body["expected_agents"] == [enrolled.agent_id]
    assert (body["download_url"], body["upload_url"]) == (None, None)
    got = client.get(f"/api/v1/sites/{SITE}/room-tests/{body['job_id']}", headers=admin_headers)
    assert got.status_code == 200
    assert (got.json()["status"], got.json()["expected_agents"]) == (
        "pending", [enrolled.agent_id])
    listing = client.get(f"/api/v1/sites/{SITE}/room-tests", headers=admin_headers).json()
    assert [t["job_id"] for t in listing] == [body["job_id"]]


@pytest.mark.both_backends
def test_api_refusals(client: TestClient, enrolled: Enrolled, engine: Engine,
                      admin_headers: dict[str, str]) -> None:
    good = {"start_in_s": 30, "duration_s": 10}
    assert client.post(url(), json=good).status_code == 401
    assert client.post(url(), json=good,
                       headers={"Authorization": f"Bearer {enrolled.credential}"}
                       ).status_code == 401  # an agent is not an admin
    resp = client.post(url("Room 99"), json=good, headers=admin_headers)
    assert resp.status_code == 404
    assert resp.json()["detail"] == ("site 'Test School' has no room 'Room 99'; "
                                     "its rooms: 'Room 12'")
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    resp = client.post(url(), json={"start_at": past, "duration_s": 10}, headers=admin_headers)
    assert resp.status_code == 422
    assert resp.json()["problems"][0].startswith(f"start_at {past} is 6")  # 60 s ago
    assert "s in the past (now " in resp.json()["problems"][0]
    resp = client.post(url(), json={**good, "start_at": past}, headers=admin_headers)
    assert (resp.status_code, resp.json()["detail"]) == (
        422, "give exactly one of start_at (ISO time) and start_in_s (seconds)")
    resp = client.post("/api/v1/sites/Nowhere/rooms/R/tests", json=good, headers=admin_headers)
    assert (resp.status_code, resp.json()["detail"]) == (404, "unknown site 'Nowhere'")
    assert client.post(url(), json={**good, "colour": "red"},
                       headers=admin_headers).status_code == 422
    assert count(engine, Job) == 0
    assert client.post(url(), json=good, headers=admin_headers).status_code == 201
    assert client.post(url(), json=good, headers=admin_headers).status_code == 409
    missing = client.get(f"/api/v1/sites/{SITE}/room-tests/no-such-job", headers=admin_headers)
    assert (missing.status_code, missing.json()["detail"]) == (
        404, "no room test 'no-such-job' in site 'Test School'")


@pytest.mark.both_backends
def test_api_result_of_another_sites_test_is_404(client: TestClient, engine: Engine,
                                                 admin_headers: dict[str, str]) -> None:
    with Session(engine) as session:
        token = new_site(session, SITE)
        new_site(session, "Other School")
    enrol(client, token)
    job_id = client.post(url(), json={"start_in_s": 30, "duration_s": 10},
                         headers=admin_headers).json()["job_id"]
    resp = client.get(f"/api/v1/sites/Other School/room-tests/{job_id}", headers=admin_headers)
    assert resp.status_code == 404


@pytest.mark.both_backends
def test_api_result_from_reports_uploaded_by_the_agent(
        client: TestClient, enrolled: Enrolled, admin_headers: dict[str, str]) -> None:
    job = client.post(url(), json={"start_in_s": 0, "duration_s": 5},
                      headers=admin_headers).json()
    start = utcnow()
    result = ProbeResult(
        probe="bandwidth", status="ok", target="http://127.0.0.1:8000/speed/download",
        started_at=start, finished_at=start + timedelta(seconds=5),
        measurements=[Measurement("download_mbps", "Mbps", "http_get_4_streams", 42.5),
                      Measurement("loaded_latency_ms", "ms", "tcp_connect_during_transfer",
                                  7.0, stat="p50", samples=20),
                      Measurement("loaded_latency_ms", "ms", "tcp_connect_during_transfer",
                                  19.0, stat="max", samples=20)])
    report = make_report(enrolled.agent_id, [result], created_at=start)
    report.trigger, report.job_id = "job", job["job_id"]
    resp = client.post("/api/v1/reports", content=batch_body(report), headers=enrolled.headers)
    assert resp.status_code == 200, resp.text
    body = client.get(f"/api/v1/sites/{SITE}/room-tests/{job['job_id']}",
                      headers=admin_headers).json()
    assert (body["status"], body["reported_agents"]) == ("complete", [enrolled.agent_id])
    assert body["totals"] == {"download": {"total_mbps": 42.5, "devices": 1,
                                           "loaded_latency_ms": {"p50": 7.0, "max": 19.0}}}

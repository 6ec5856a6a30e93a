"""``GET /api/v1/agent/control``: timetable, salt, the room's jobs, the clock; poll recorded."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from agent.wire import Job as WireJob
from collector.models import Agent, Job, Room, Site, utcnow
from collector.services.control import pending_jobs
from tests.collector.conftest import SITE, T0, Enrolled, enrol
from tests.collector.test_timetable_api import SCHOOL

URL = "/api/v1/agent/control"


def ids(engine: Engine, room: str) -> tuple[int, int]:
    with Session(engine) as session:
        r = session.exec(select(Room).where(Room.name == room)).one()
        assert r.id is not None
        return r.site_id, r.id


def add_job(engine: Engine, room: str, kind: str, start_at: datetime, duration_s: float = 20,
            created_at: datetime | None = None) -> str:
    site_id, room_id = ids(engine, room)
    job_id = str(uuid.uuid4())
    with Session(engine) as session:
        session.add(Job(id=job_id, site_id=site_id, room_id=room_id, kind=kind,
                        start_at=start_at, duration_s=duration_s,
                        directions="download,upload" if kind == "room_test" else "",
                        created_at=created_at or start_at, reason=f"{kind} test",
                        download_url="http://127.0.0.1:9/speed/download"))
        session.commit()
    return job_id


def test_pending_jobs_boundaries(client: TestClient, site_token: str, enrolled: Enrolled,
                                 engine: Engine) -> None:
    enrol(client, site_token, "Lab 2")
    now = T0
    later = add_job(engine, "Room 12", "room_test", now + timedelta(days=3))
    # download 20 s + 2 s gap + upload 20 s: listed until the upload phase is over
    running = add_job(engine, "Room 12", "room_test", now - timedelta(seconds=41.999))
    add_job(engine, "Room 12", "room_test", now - timedelta(seconds=42))  # ends exactly now
    add_job(engine, "Lab 2", "room_test", now + timedelta(seconds=60))  # another room
    fresh = add_job(engine, "Room 12", "burst", now, 0, created_at=now - timedelta(minutes=10))
    add_job(engine, "Room 12", "burst", now, 0,
            created_at=now - timedelta(minutes=10, microseconds=1))
    site_id, room_id = ids(engine, "Room 12")
    with Session(engine) as session:
        jobs = pending_jobs(session, site_id, room_id, now)
    assert [j.job_id for j in jobs] == [running, fresh, later]
    first = jobs[0]
    assert first == WireJob(job_id=running, kind="room_test",
                            start_at=now - timedelta(seconds=41.999), duration_s=20,
                            directions=["download", "upload"],
                            download_url="http://127.0.0.1:9/speed/download", upload_url=None,
                            streams=4, reason="room_test test")
    assert jobs[1].directions == []


def test_control_answers_timetable_salt_and_only_this_rooms_jobs(
        client: TestClient, site_token: str, enrolled: Enrolled, engine: Engine,
        admin_headers: dict[str, str]) -> None:
    other = enrol(client, site_token, "Lab 2")
    resp = client.get(URL, headers=enrolled.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    with Session(engine) as session:
        salt = session.exec(select(Site).where(Site.name == SITE)).one().salt
    server_time = datetime.fromisoformat(body["server_time"])
    assert abs((server_time - utcnow()).total_seconds()) < 5
    received = datetime.fromisoformat(body["received_at"])
    assert received <= server_time  # NTP style: handling time between the two
    assert {k: body[k] for k in ("site", "room", "site_salt", "timetable", "jobs",
                                 "poll_interval_s")} == {
        "site": SITE, "room": "Room 12", "site_salt": salt, "timetable": None, "jobs": [],
        "poll_interval_s": 60.0}

    stored = client.put(f"/api/v1/sites/{SITE}/timetable", headers=admin_headers,
                        json=SCHOOL).json()
    soon = utcnow() + timedelta(minutes=5)
    mine = add_job(engine, "Room 12", "room_test", soon)
    theirs = add_job(engine, "Lab 2", "room_test", soon)
    body = client.get(URL, headers=enrolled.headers).json()
    assert body["timetable"] == stored
    assert [j["job_id"] for j in body["jobs"]] == [mine]
    assert body["jobs"][0]["directions"] == ["download", "upload"]
    assert datetime.fromisoformat(body["jobs"][0]["start_at"]) == soon
    assert body["poll_interval_s"] == 30.0
    assert [j["job_id"] for j in client.get(URL, headers=other.headers).json()["jobs"]] == [
        theirs]


def test_poll_records_last_seen_version_and_clock_offset(client: TestClient,
                                                         enrolled: Enrolled,
                                                         engine: Engine) -> None:
    before = utcnow()
    resp = client.get(URL, headers={**enrolled.headers, "X-Classprobe-Agent-Version": "0.3.1",
                                    "X-Classprobe-Clock-Offset": "-42.5"})
    assert resp.status_code == 200, resp.text
    with Session(engine) as session:
        agent = session.get(Agent, enrolled.agent_id)
        assert agent is not None and agent.last_seen is not None
        assert (agent.agent_version, agent.clock_offset_s) == ("0.3.1", -42.5)
        assert before <= agent.last_seen <= utcnow()
    # A poll without the headers keeps what is known.
    client.get(URL, headers=enrolled.headers)
    with Session(engine) as session:
        agent = session.get(Agent, enrolled.agent_id)
        assert agent is not None
        assert (agent.agent_version, agent.clock_offset_s) == ("0.3.1", -42.5)


@pytest.mark.parametrize("raw", ["abc", "nan", "inf", "-Infinity", "1e400", "4 2"])
def test_garbage_clock_offset_is_422_naming_it(client: TestClient, enrolled: Enrolled,
                                               engine: Engine, raw: str) -> None:
    resp = client.get(URL, headers={**enrolled.headers, "X-Classprobe-Clock-Offset": raw})
    assert resp.status_code == 422
    assert resp.json()["detail"] == (
        f"X-Classprobe-Clock-Offset {raw!r} is not a finite number of seconds")
    with Session(engine) as session:
        agent = session.get(Agent, enrolled.agent_id)
        assert agent is not None and agent.clock_offset_s is None


def test_overlong_version_is_422(client: TestClient, enrolled: Enrolled) -> None:
    resp = client.get(URL, headers={**enrolled.headers, "X-Classprobe-Agent-Version": "9" * 65})
    assert resp.status_code == 422
    assert resp.json()["detail"].startswith("X-Classprobe-Agent-Version '999")


def test_credential_is_required(client: TestClient, enrolled: Enrolled) -> None:
    assert client.get(URL).status_code == 401
    resp = client.get(URL, headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401 and "not recognised" in resp.json()["detail"]

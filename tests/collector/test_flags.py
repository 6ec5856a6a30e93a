"""Flags: the service (burst jobs, reuse, rate limit, links, QR) and ``POST /api/v1/flags``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import segno
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from collector.models import Agent, Flag, Job
from collector.services.flags import (
    FlagError,
    FlagRateLimited,
    list_flags,
    qr_code,
    raise_flag,
    room_link,
)
from collector.services.room_tests import UnknownRoom
from collector.services.sites import get_site
from tests.collector.conftest import SITE, T0, Enrolled, count
from tests.collector.room_rows import new_agent, new_site


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s


@pytest.fixture
def agent(session: Session) -> Agent:
    row = session.get(Agent, new_agent(session, new_site(session), "Room 12", T0))
    assert row is not None
    return row


def flag(session: Session, agent: Agent, note: str = "", source: str = "agent",
         minutes: float = 0) -> tuple[Flag, Job | None]:
    return raise_flag(session, agent.site_id, agent.room_id, note, source,
                      agent.id if source == "agent" else None,
                      T0 + timedelta(minutes=minutes))


def test_a_flag_makes_a_burst_for_its_room(session: Session, agent: Agent) -> None:
    stored, burst = flag(session, agent, note="  videos froze in the Teams call \n")
    assert burst is not None
    assert (stored.note, stored.source, stored.agent_id, stored.created_at, stored.job_id) == (
        "videos froze in the Teams call", "agent", agent.id, T0, burst.id)
    row = session.get(Job, burst.id)
    assert row is not None
    assert (row.kind, row.room_id, row.start_at, row.flag_id, row.reason) == (
        "burst", agent.room_id, T0, stored.id,
        "problem flagged at 09:00 UTC: videos froze in the Teams call")


def test_one_burst_covers_flags_within_ten_minutes(session: Session, agent: Agent) -> None:
    first, burst = flag(session, agent)
    assert burst is not None and burst.reason == "problem flagged at 09:00 UTC"
    second, again = flag(session, agent, note="still slow", minutes=9.9)
    assert again is not None and again.id == burst.id
    assert second.job_id == burst.id
    third, fresh = flag(session, agent, minutes=10.1)
    assert fresh is not None and fresh.id != burst.id
    assert len(session.exec(select(Job)).all()) == 2
    assert [(f.flag_id, f.burst_job_id) for f in list_flags(session, get_site(session, SITE))
            ] == [(third.id, fresh.id), (second.id, burst.id), (first.id, burst.id)]


def test_web_flags_are_rate_limited_agent_flags_are_not(session: Session,
                                                       agent: Agent) -> None:
    flag(session, agent, source="web")
    with pytest.raises(FlagRateLimited) as info:
        flag(session, agent, source="web", minutes=9)
    assert info.value.last == T0
    assert str(info.value) == ("a problem in Room 12 was already reported at 09:00 UTC; "
                               "the measurements are running")
    flag(session, agent, source="agent", minutes=9)
    flag(session, agent, source="web", minutes=10.5)
    assert [f.source for f in session.exec(select(Flag).order_by(col(Flag.created_at))).all()] == [
        "web", "agent", "web"]


def test_bad_notes_and_sources_store_nothing(session: Session, agent: Agent) -> None:
    with pytest.raises(FlagError, match="the note is 501 characters long; at most 500 fit"):
        flag(session, agent, note="x" * 501)
    with pytest.raises(FlagError, match="flag source 'email' is not one of"):
        flag(session, agent, source="email")
    assert session.exec(select(Flag)).all() == []
    assert session.exec(select(Job)).all() == []
    stored, _ = flag(session, agent, note=" " + "y" * 500 + " ")
    assert len(stored.note) == 500


def test_room_link_makes_one_random_key_per_room(session: Session, agent: Agent) -> None:
    site = get_site(session, SITE)
    link = room_link(session, site, "Room 12", "https://probe.school.example/")
    assert link.startswith("https://probe.school.example/r/")
    key = link.rsplit("/", 1)[1]
    assert len(key) >= 40
    assert room_link(session, site, "Room 12", "http://other:8000") == f"http://other:8000/r/{key}"
    with pytest.raises(UnknownRoom, match="has no room 'Room 13'; its rooms: 'Room 12'"):
        room_link(session, site, "Room 13", "http://x")


def test_qr_code_encodes_exactly_the_url() -> None:
    url = "https://probe.school.example/r/abcDEF-123_xyz"
    code = qr_code(url)
    assert code.mode == "byte"
    assert code.error in ("M", "Q", "H")  # at least M; segno raises it when the size allows
    assert code.matrix == segno.make(url, error="m", mode="byte", micro=False).matrix
    assert code.matrix != segno.make(url[:-1] + "Z", error="m", micro=False).matrix


# --- the agent API ------------------------------------------------------------------------

def test_api_flag_makes_a_burst_visible_in_the_job_table(
        client: TestClient, enrolled: Enrolled, engine: Engine) -> None:
    resp = client.post("/api/v1/flags", json={"note": "pages will not load",
                                              "created_at": T0.isoformat()},
                       headers=enrolled.headers)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    with Session(engine) as session:
        job = session.get(Job, body["burst_job_id"])
        stored = session.get(Flag, body["flag_id"])
        assert job is not None and stored is not None
        assert (job.kind, job.flag_id) == ("burst", stored.id)
        assert job.reason is not None and job.reason.endswith(" UTC: pages will not load")
        assert (stored.source, stored.agent_id, stored.note) == (
            "agent", enrolled.agent_id, "pages will not load")
    again = client.post("/api/v1/flags", json={}, headers=enrolled.headers)
    assert again.status_code == 201
    assert again.json()["burst_job_id"] == body["burst_job_id"]
    assert again.json()["flag_id"] != body["flag_id"]
    assert (count(engine, Flag), count(engine, Job)) == (2, 1)


def test_api_flag_refusals(client: TestClient, enrolled: Enrolled, engine: Engine) -> None:
    assert client.post("/api/v1/flags", json={}).status_code == 401
    resp = client.post("/api/v1/flags", json={"note": "z" * 501}, headers=enrolled.headers)
    assert resp.status_code == 422
    assert resp.json()["problems"] == ["note: the note is 501 characters long; at most 500 fit"]
    resp = client.post("/api/v1/flags", json={"note": 5}, headers=enrolled.headers)
    assert resp.status_code == 422
    assert resp.json()["problems"][0].startswith("note: Input should be a valid string")
    resp = client.post("/api/v1/flags", json={"created_at": "2026-01-01T09:00:00"},
                       headers=enrolled.headers)
    assert resp.json()["problems"] == ["created_at 2026-01-01T09:00:00 has no timezone"]
    resp = client.post("/api/v1/flags", content=b"not json", headers=enrolled.headers)
    assert resp.status_code == 400
    assert (count(engine, Flag), count(engine, Job)) == (0, 0)


def test_browser_line_breaks_count_once(session: Session, agent: Agent) -> None:
    stored, _ = flag(session, agent, note="a\r\n" * 250)  # 750 characters as sent
    assert stored.note == "a\n" * 249 + "a"

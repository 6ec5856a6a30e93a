"""The no-login report-a-problem page ``/r/{flag_key}`` and its QR code."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from collector.models import Flag, Job, Room, Timetable, utcnow
from collector.services.flags import qr_svg, room_link
from collector.services.sites import get_site
from tests.collector.conftest import SITE, Enrolled, count

SAME_SITE = {"Origin": "http://testserver"}


@pytest.fixture
def key(engine: Engine, enrolled: Enrolled) -> str:
    with Session(engine) as session:
        link = room_link(session, get_site(session, SITE), "Room 12", "http://testserver")
    return link.rsplit("/", 1)[1]


def post(client: TestClient, key: str, note: str = "",
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    resp = client.post(f"/r/{key}", data={"note": note},
                       headers=SAME_SITE if headers is None else headers)
    return resp.status_code, resp.text


def test_the_page_names_the_room_and_is_accessible(client: TestClient, key: str) -> None:
    resp = client.get(f"/r/{key}")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert "<h1>Report a problem in Room 12 <span class=\"site\">(Test School)</span></h1>" in html
    assert '<label for="note">' in html and '<textarea id="note" name="note"' in html
    assert 'aria-describedby="note-hint"' in html
    assert '<button type="submit">Report a problem now</button>' in html
    assert ":focus-visible" in html
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["cache-control"] == "no-store"


def test_a_report_stores_a_web_flag_and_a_burst(client: TestClient, key: str,
                                                engine: Engine) -> None:
    code, html = post(client, key, note="  the quiz froze  ")
    assert code == 201
    assert "The problem in Room 12 is recorded" in html
    with Session(engine) as session:
        (stored,) = session.exec(select(Flag)).all()
        (burst,) = session.exec(select(Job)).all()
    assert (stored.source, stored.agent_id, stored.note, stored.job_id) == (
        "web", None, "the quiz froze", burst.id)
    assert (burst.kind, burst.flag_id) == ("burst", stored.id)


def test_a_second_report_within_ten_minutes_is_429_and_stores_nothing(
        client: TestClient, key: str, engine: Engine) -> None:
    assert post(client, key)[0] == 201
    with Session(engine) as session:
        first = session.exec(select(Flag)).one().created_at
    code, html = post(client, key, note="again")
    assert code == 429
    assert (f"A problem in Room 12 was already reported at {first:%H:%M} UTC; "
            "the measurements are running.") in html
    assert (count(engine, Flag), count(engine, Job)) == (1, 1)


def test_times_on_the_page_are_in_the_sites_timezone(client: TestClient, key: str,
                                                     engine: Engine) -> None:
    with Session(engine) as session:
        site = get_site(session, SITE)
        room = session.exec(select(Room)).one()
        assert site.id is not None and room.id is not None
        session.add(Timetable(site_id=site.id,
                              document=json.dumps({"timezone": "Asia/Kolkata"})))
        earlier = utcnow() - timedelta(minutes=3)
        session.add(Flag(id="f1", site_id=site.id, room_id=room.id, created_at=earlier,
                         source="web"))
        session.commit()
    code, html = post(client, key)
    assert code == 429
    assert (earlier + timedelta(hours=5, minutes=30)).strftime("%H:%M IST") in html


def test_a_note_too_long_is_422_with_the_note_kept(client: TestClient, key: str,
                                                   engine: Engine) -> None:
    code, html = post(client, key, note="n" * 501)
    assert code == 422
    assert "the note is 501 characters long; at most 500 fit" in html
    assert 'role="alert"' in html and 'aria-invalid="true"' in html
    assert "n" * 501 + "</textarea>" in html
    assert (count(engine, Flag), count(engine, Job)) == (0, 0)


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Referer": "https://evil.example/page"},
])
def test_cross_site_posts_are_refused(client: TestClient, key: str, engine: Engine,
                                      headers: dict[str, str]) -> None:
    code, html = post(client, key, headers=headers)
    assert code == 403
    assert "can only be sent from its own page" in html
    assert count(engine, Flag) == 0


@pytest.mark.parametrize("headers", [
    {"Referer": "http://testserver/r/page"},
    {"Origin": "http://TestServer"},
    {},  # neither header: not a browser posting from another site (curl, scripts)
])
def test_same_site_or_headerless_posts_are_accepted(client: TestClient, key: str,
                                                    headers: dict[str, str]) -> None:
    assert post(client, key, headers=headers)[0] == 201


def test_unknown_key_is_a_404_page(client: TestClient, key: str, engine: Engine) -> None:
    for resp in (client.get("/r/not-a-key"), client.post("/r/not-a-key", data={"note": ""},
                                                         headers=SAME_SITE),
                 client.get("/r/not-a-key/qr.svg")):
        assert resp.status_code == 404
        assert "This report-a-problem link is not known" in resp.text
    assert count(engine, Flag) == 0


def test_qr_svg_is_svg_of_the_pages_url(client: TestClient, key: str) -> None:
    resp = client.get(f"/r/{key}/qr.svg")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "image/svg+xml"
    root = ET.fromstring(resp.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None and title.text == "Report a problem in Room 12 (Test School)"
    assert resp.content == qr_svg(f"http://testserver/r/{key}",
                                  "Report a problem in Room 12 (Test School)")

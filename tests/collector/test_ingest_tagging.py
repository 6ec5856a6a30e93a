"""Ingest tags each measurement with the timetable period, and keeps trigger/job/clock."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.wire import Report, Trigger, new_report
from collector.models import Agent, Job, Measurement, Room, Site
from collector.models import Report as ReportRow
from collector.services.timetables import set_timetable
from tests.collector.conftest import SITE, T0, Enrolled, batch_body, enrol, latency_result
from tests.collector.test_timetable_api import SCHOOL


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# UTC start time -> (period, in_lesson) for SCHOOL (Europe/London, GMT until Sun 29 March
# 2026, BST = UTC+1 from then on).
CASES = [
    (utc(2026, 3, 23, 8, 55), "P1", True),       # Mon, GMT: 08:55 local
    (utc(2026, 3, 23, 8, 50), "P1", True),       # the first second of P1
    (utc(2026, 3, 23, 9, 50), None, False),      # P1 is over at 09:50
    (utc(2026, 3, 23, 9, 55), None, False),      # break
    (utc(2026, 3, 30, 7, 55), "P1", True),       # Mon, BST: 07:55 UTC is 08:55 local
    (utc(2026, 3, 30, 8, 55), None, False),      # 09:55 local: break (P1 if read as UTC)
    (utc(2026, 3, 30, 9, 30), "P2", True),       # 10:30 local
    (utc(2026, 3, 25, 15, 45), "Club", True),    # Wed only
    (utc(2026, 3, 24, 15, 45), None, False),     # Tue: no club
    (utc(2026, 3, 27, 8, 55), None, False),      # Fri: INSET day (closed)
    (utc(2026, 3, 28, 8, 55), None, False),      # Sat
]


def site_of(engine: Engine) -> Site:
    with Session(engine) as session:
        return session.exec(select(Site).where(Site.name == SITE)).one()


def set_school(engine: Engine) -> None:
    with Session(engine) as session:
        set_timetable(session, session.exec(select(Site).where(Site.name == SITE)).one(),
                      SCHOOL, T0)


def upload(client: TestClient, who: Enrolled, *reports: Report) -> None:
    resp = client.post("/api/v1/reports", headers=who.headers, content=batch_body(*reports))
    assert resp.status_code == 200, resp.text


def report(who: Enrolled, starts: list[datetime], *, trigger: Trigger = "manual",
           job_id: str | None = None, clock_offset_s: float | None = None) -> Report:
    results = [latency_result(f"t{i}", p50=i + 1.0, start=s) for i, s in enumerate(starts)]
    return new_report(who.agent_id, "0.2.0", results, trigger=trigger, job_id=job_id,
                      clock_offset_s=clock_offset_s)


def tags(engine: Engine) -> dict[datetime, set[tuple[str | None, bool | None]]]:
    out: dict[datetime, set[tuple[str | None, bool | None]]] = {}
    with Session(engine) as session:
        for m in session.exec(select(Measurement)).all():
            out.setdefault(m.time, set()).add((m.period, m.in_lesson))
    return out


def test_measurements_get_the_local_period_across_the_dst_change(
        client: TestClient, enrolled: Enrolled, engine: Engine,
        admin_headers: dict[str, str]) -> None:
    set_school(engine)
    upload(client, enrolled, report(enrolled, [t for t, _, _ in CASES]))
    assert tags(engine) == {t: {(period, lesson)} for t, period, lesson in CASES}
    exported = client.get(f"/api/v1/sites/{SITE}/export", params={"format": "json"},
                          headers=admin_headers).json()
    assert {(datetime.fromisoformat(r["time"]), r["period"], r["in_lesson"], r["trigger"])
            for r in exported} == {(t, p, lesson, "manual") for t, p, lesson in CASES}


def test_no_timetable_means_untagged(client: TestClient, enrolled: Enrolled,
                                     engine: Engine) -> None:
    upload(client, enrolled, report(enrolled, [CASES[0][0]]))
    assert tags(engine) == {CASES[0][0]: {(None, None)}}


def test_trigger_job_and_clock_offset_are_stored(client: TestClient, site_token: str,
                                                 enrolled: Enrolled, engine: Engine,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    other = enrol(client, site_token, "Lab 2")
    with Session(engine) as session:
        rooms = {r.name: r.id or 0 for r in session.exec(select(Room)).all()}
        site_id = site_of(engine).id or 0
        mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
        for job_id, room in ((mine, "Room 12"), (theirs, "Lab 2")):
            session.add(Job(id=job_id, site_id=site_id, room_id=rooms[room], kind="room_test",
                            start_at=T0, duration_s=20, directions="download"))
        session.commit()
    stray = str(uuid.uuid4())
    ok = report(enrolled, [T0], trigger="job", job_id=mine, clock_offset_s=-1.25)
    foreign = report(enrolled, [T0], trigger="job", job_id=theirs, clock_offset_s=42.0)
    unknown = report(enrolled, [T0], trigger="burst", job_id=stray)
    plain = report(enrolled, [T0])
    foreign.created_at = ok.created_at + timedelta(seconds=1)
    with caplog.at_level(logging.WARNING, logger="classprobe.collector.ingest"):
        upload(client, enrolled, ok, foreign, unknown, plain)
    with Session(engine) as session:
        rows = {r.report_id: r for r in session.exec(select(ReportRow)).all()}
        got = [(row.trigger, row.job_id, row.clock_offset_s)
               for row in (rows[str(r.report_id)] for r in (ok, foreign, unknown, plain))]
        agent = session.get(Agent, enrolled.agent_id)
        assert agent is not None
        newest_offset = agent.clock_offset_s
    assert got == [("job", mine, -1.25), ("job", None, 42.0), ("burst", None, None),
                   ("manual", None, None)]
    assert newest_offset == 42.0  # from the newest report that carried an offset
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2
    assert f"job_id {theirs!r} is not a job of its room" in warned[0]
    assert f"job_id {stray!r} is not a job of its room" in warned[1]
    assert other.agent_id not in " ".join(warned)


def test_a_batch_reads_the_timetable_once(client: TestClient, enrolled: Enrolled,
                                          engine: Engine,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from collector.services import ingest

    set_school(engine)
    calls: list[int] = []
    real = ingest.parsed_timetable

    def counting(document: str, site_id: int) -> object:
        calls.append(site_id)
        return real(document, site_id)

    monkeypatch.setattr(ingest, "parsed_timetable", counting)
    upload(client, enrolled, *[report(enrolled, [t for t, _, _ in CASES]) for _ in range(3)])
    assert len(calls) == 1
    with Session(engine) as session:
        tagged = session.exec(select(Measurement).where(col(Measurement.period) == "P1")).all()
    assert len(tagged) == 3 * 3 * 2  # 3 reports x 3 P1 cases x 2 measurements each


def test_a_stored_timetable_that_no_longer_parses_never_loses_data(
        client: TestClient, enrolled: Enrolled, engine: Engine,
        caplog: pytest.LogCaptureFixture) -> None:
    from collector.models import Timetable

    site_id = site_of(engine).id or 0
    with Session(engine) as session:  # e.g. a zone the server's tzdata no longer knows
        session.add(Timetable(site_id=site_id, document=json.dumps(
            {**SCHOOL, "timezone": "Mars/Olympus_Mons"})))
        session.commit()
    with caplog.at_level(logging.ERROR, logger="classprobe.collector.ingest"):
        upload(client, enrolled, report(enrolled, [CASES[0][0]]))
    assert tags(engine) == {CASES[0][0]: {(None, None)}}
    (record,) = caplog.records
    assert record.getMessage().startswith(
        f"site {site_id}: stored timetable no longer parses (site {site_id} timetable: "
        "timezone = 'Mars/Olympus_Mons': unknown time zone")

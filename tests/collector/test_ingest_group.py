"""A group of uploads written in one transaction stores, and answers, exactly what each
upload alone would; an upload the database refuses costs no other upload its answer."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, select

from agent.wire import IngestResponse, Report, ReportBatch
from collector.app import create_app
from collector.models import Agent, Job, Site
from collector.models import Report as ReportRow
from collector.services import ingest
from collector.services.enrolment import AgentIdentity
from collector.services.ingest import Upload, store_batch, store_group
from collector.services.ingest_read import BatchReads, read_separately
from collector.services.ingest_write import writer_for
from collector.services.sites import create_site
from collector.services.timetables import set_timetable
from collector.settings import Settings
from tests.collector.conftest import T0, Enrolled, batch_body, count, enrol, make_report
from tests.collector.test_ingest_write import identity, query, results, stored

NOW = T0 + timedelta(hours=1)


class TwoRooms:
    """Two agents of one site in rooms with a job each, a timetable, one report stored."""

    def __init__(self, client: TestClient, engine: Engine, enrolled: Enrolled,
                 site_token: str) -> None:
        self.a = identity(engine, enrolled)
        self.b = identity(engine, enrol(client, site_token, "Another room"))
        self.stored = make_report(self.a.agent_id, results())
        store_batch(engine, self.a, ReportBatch([self.stored]), T0)
        with Session(engine) as session:
            site = session.get(Site, self.a.site_id)
            assert site is not None
            set_timetable(session, site, {"timezone": "UTC", "periods": [
                {"name": "P1", "start": "09:00", "end": "10:00"}]}, T0)
            for job_id, who in (("job-a", self.a), ("job-b", self.b)):
                session.add(Job(id=job_id, site_id=who.site_id, room_id=who.room_id,
                                kind="burst", start_at=T0))
            session.commit()

    def uploads(self) -> list[Upload]:
        """Agent a's two uploads around agent b's: a foreign job id, a report stored
        already, and a report twice (the second time: a duplicate)."""
        def report(who: AgentIdentity, job: str | None = None, **fields: Any) -> Report:
            return replace(make_report(who.agent_id, results()), job_id=job, **fields)
        first, twice = report(self.a, "job-a"), report(self.a, "job-b")
        return [Upload(self.a, ReportBatch([first, twice])),
                Upload(self.b, ReportBatch([report(self.b, "job-b"), self.stored])),
                Upload(self.a, ReportBatch([twice, report(
                    self.a, agent_version="9.9", clock_offset_s=-0.5)]))]


def renamed(uploads: list[Upload], keep: uuid.UUID) -> tuple[list[Upload], dict[str, str]]:
    """The same uploads with fresh report ids (one id stays one id, ``keep`` is kept);
    new id -> old id."""
    fresh: dict[str, str] = {}
    old_to_new: dict[uuid.UUID, uuid.UUID] = {keep: keep}

    def rename(report: Report) -> Report:
        new = old_to_new.setdefault(report.report_id, uuid.uuid4())
        fresh[str(new)] = str(report.report_id)
        return replace(report, report_id=new)
    return [Upload(u.who, ReportBatch([rename(r) for r in u.batch.reports]))
            for u in uploads], fresh


def answers_as(answer: IngestResponse | Exception, names: dict[str, str]) -> Any:
    assert isinstance(answer, IngestResponse), answer
    return ([names.get(i, i) for i in answer.accepted],
            [names.get(i, i) for i in answer.duplicates])


@pytest.mark.both_backends
def test_a_group_stores_and_answers_what_each_upload_alone_would(
        client: TestClient, enrolled: Enrolled, engine: Engine, site_token: str) -> None:
    room = TwoRooms(client, engine, enrolled, site_token)
    grouped = room.uploads()
    alone, names = renamed(grouped, keep=room.stored.report_id)
    together = store_group(engine, grouped, NOW)
    with Session(engine) as session:
        agent = session.get(Agent, room.a.agent_id)
        assert agent is not None  # a's later upload gave a version and a clock offset
        assert (agent.agent_version, agent.clock_offset_s) == ("9.9", -0.5)
        assert agent.last_seen == NOW
        jobs = dict(session.exec(select(ReportRow.report_id, ReportRow.job_id)).all())
    one_by_one = [store_batch(engine, u.who, u.batch, NOW) for u in alone]
    same = {i: i for u in grouped for i in (str(r.report_id) for r in u.batch.reports)}
    assert [answers_as(a, same) for a in together] == [answers_as(a, names)
                                                       for a in one_by_one]
    first, twice = (str(r.report_id) for r in grouped[0].batch.reports)
    assert [answers_as(a, same) for a in together] == [
        ([first, twice], []),
        ([str(grouped[1].batch.reports[0].report_id)], [str(room.stored.report_id)]),
        ([str(grouped[2].batch.reports[1].report_id)], [twice])]

    def rows(ids: list[str], rename: dict[str, str]) -> list[str]:
        return sorted(repr((rename.get(r[0], r[0]), *r[1:])) for r in stored(engine, ids))
    assert rows(list(same), same) == rows(list(names), names)
    assert jobs[first] == "job-a" and jobs[twice] is None  # job-b is another room's


@pytest.mark.both_backends
def test_each_writer_reads_a_group_as_the_separate_statements_do(
        client: TestClient, enrolled: Enrolled, engine: Engine, site_token: str) -> None:
    """PostgreSQL's one statement for a whole group against the reference, statement by
    statement: each upload's duplicates, jobs and timetable, and each agent's update (an
    agent with two uploads: what the later one gives wins, what it leaves out stays)."""
    room = TwoRooms(client, engine, enrolled, site_token)
    ids = [str(room.stored.report_id), str(uuid.uuid4())]
    jobs = ["job-a", "job-b", "job-unknown"]
    queries = [query(room.a, ids, jobs, agent_version="9.9", clock_offset_s=-0.25),
               query(room.b, ids[:1], jobs),
               query(room.a, ids[1:], ["job-a"], clock_offset_s=0.75)]
    got: list[tuple[list[BatchReads], list[tuple[Any, ...]]]] = []
    for reader in (None, read_separately):
        with Session(engine) as session:
            conn = session.connection()
            reads = (reader or writer_for(conn).read)(conn, queries)
            agents = [session.get(Agent, who.agent_id) for who in (room.a, room.b)]
            got.append((reads, [(a.agent_version, a.clock_offset_s) for a in agents if a]))
            session.rollback()
    assert got[0] == got[1]
    reads, agent_state = got[0]
    assert [r.known for r in reads] == [{ids[0]}, {ids[0]}, set()]
    assert [r.room_jobs for r in reads] == [{"job-a"}, {"job-b"}, {"job-a"}]
    assert all(r.timetable is not None and '"P1"' in r.timetable for r in reads)
    assert agent_state[0] == ("9.9", 0.75)


@pytest.mark.both_backends
def test_an_upload_the_database_refuses_costs_no_other_upload_its_answer(
        client: TestClient, enrolled: Enrolled, engine: Engine, site_token: str) -> None:
    room = TwoRooms(client, engine, enrolled, site_token)
    ghost = AgentIdentity("no-such-agent", room.a.site_id, room.a.room_id)  # revoked: no row
    good = [Upload(who, ReportBatch([make_report(who.agent_id)])) for who in (room.a, room.b)]
    refused = Upload(ghost, ReportBatch([make_report(ghost.agent_id)]))
    answers = store_group(engine, [good[0], refused, good[1]], NOW)
    assert isinstance(answers[1], IntegrityError)  # the report's agent must exist
    for upload, answer in zip(good, answers[::2], strict=True):
        assert answer == IngestResponse([str(upload.batch.reports[0].report_id)], [])
    assert count(engine, ReportRow) == 3  # the one stored before, and the two good ones


@pytest.mark.both_backends
def test_an_unavailable_database_fails_every_upload_at_once(
        enrolled: Enrolled, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """No upload-by-upload retry of a group when the database is down: each would fail
    the same way, after its own wait for a connection."""
    who = identity(engine, enrolled)
    calls: list[int] = []

    def down(*_args: Any) -> Any:
        calls.append(1)
        raise OperationalError("connect", {}, Exception("connection refused"))
    monkeypatch.setattr(ingest, "_store_once", down)
    uploads = [Upload(who, ReportBatch([make_report(who.agent_id)])) for _ in range(3)]
    answers = store_group(engine, uploads, NOW)
    assert len(calls) == 1
    assert all(isinstance(a, OperationalError) for a in answers) and len(answers) == 3


class Victim(Exception):
    sqlstate = "40P01"  # deadlock_detected, as psycopg's error carries it


@pytest.mark.both_backends
def test_a_deadlock_victim_is_tried_again(enrolled: Enrolled, engine: Engine,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    who = identity(engine, enrolled)
    real = ingest._store_once
    calls: list[int] = []

    def first_a_victim(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("UPDATE agent", {}, Victim("deadlock detected"))
        return real(*args)
    monkeypatch.setattr(ingest, "_store_once", first_a_victim)
    report = make_report(who.agent_id)
    assert store_batch(engine, who, ReportBatch([report]), NOW).accepted == [
        str(report.report_id)]
    assert len(calls) == 2
    assert count(engine, ReportRow) == 1


@pytest.mark.both_backends
def test_uploads_that_arrive_together_over_http_are_grouped_and_each_answered(
        app: FastAPI, client: TestClient, enrolled: Enrolled, engine: Engine,
        site_token: str, monkeypatch: pytest.MonkeyPatch) -> None:
    agents = [enrolled, enrol(client, site_token, "Room 2"), enrol(client, site_token, "Room 3")]
    uploads = [(a, [make_report(a.agent_id) for _ in range(2)]) for a in agents * 2]
    real = ingest._write_group
    groups: list[int] = []

    def write(engine: Engine, group: list[Upload], now: datetime) -> Any:
        groups.append(len(group))
        if len(groups) == 1:  # hold the first group until the other uploads wait
            deadline = time.monotonic() + 10
            while app.state.ingest_queue.waiting < len(uploads) - len(group):
                assert time.monotonic() < deadline, "the other uploads never arrived"
                time.sleep(0.01)
        return real(engine, group, now)
    monkeypatch.setattr(ingest, "_write_group", write)

    def post(job: tuple[Enrolled, list[Report]]) -> Any:
        who, reports = job
        return client.post("/api/v1/reports", headers=who.headers,
                           content=batch_body(*reports))
    with ThreadPoolExecutor(len(uploads)) as pool:
        answers = list(pool.map(post, uploads))
    assert [a.status_code for a in answers] == [200] * len(uploads)
    assert [a.json() for a in answers] == [
        {"accepted": [str(r.report_id) for r in reports], "duplicates": []}
        for _, reports in uploads]
    assert len(groups) == 2 and sum(groups) == len(uploads)  # all but the first together
    assert count(engine, ReportRow) == 2 * len(uploads)


def test_the_settings_size_each_process_queue(settings: Settings, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSPROBE_INGEST_CONCURRENCY", "2")
    monkeypatch.setenv("CLASSPROBE_INGEST_GROUP_REPORTS", "3")
    monkeypatch.setenv("CLASSPROBE_DATABASE_URL", settings.resolved_database_url())
    monkeypatch.setenv("CLASSPROBE_DATA_DIR", str(tmp_path))
    app = create_app(Settings())
    try:
        with TestClient(app) as client:
            with Session(app.state.engine) as session:
                token = create_site(session, "Queue School")
            agent = enrol(client, token)
            resp = client.post("/api/v1/reports", headers=agent.headers,
                               content=batch_body(make_report(agent.agent_id)))
            assert resp.status_code == 200, resp.text
            queue = app.state.ingest_queue
            assert (queue.writers, queue.group_reports) == (2, 3)
    finally:
        app.state.engine.dispose()
    with pytest.raises(ValidationError, match="ingest_group_reports"):
        Settings(ingest_group_reports=0)


def test_a_committed_group_is_never_written_again(
        client: TestClient, enrolled: Enrolled, engine: Engine, site_token: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An error after the commit (here: counting for /metrics) is raised as it is: writing
    the uploads again one by one would answer their new reports as duplicates."""
    room = TwoRooms(client, engine, enrolled, site_token)
    uploads = [Upload(who, ReportBatch([make_report(who.agent_id)])) for who in (room.a, room.b)]
    writes: list[int] = []
    real = ingest._write_group

    def write(*args: Any) -> Any:
        writes.append(1)
        return real(*args)

    def broken_counter(*_args: Any) -> None:
        raise RuntimeError("counter broke")
    monkeypatch.setattr(ingest, "_write_group", write)
    monkeypatch.setattr(ingest, "count_ingest", broken_counter)
    with pytest.raises(RuntimeError, match="counter broke"):
        store_group(engine, uploads, NOW)
    assert len(writes) == 1
    assert count(engine, ReportRow) == 3  # the one stored before, and both uploads

"""The bulk writers of ingest store exactly what SQLAlchemy itself would, on each backend,
and raise SQLAlchemy's exceptions; integers the database cannot hold are a 422."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from agent.wire import Measurement, ProbeResult, ReportBatch
from collector.models import Agent
from collector.models import Report as ReportRow
from collector.services.enrolment import AgentIdentity
from collector.services.ingest import BatchContext, _rows, store_batch
from collector.services.ingest_write import (
    BatchQuery,
    BatchReads,
    CopyWriter,
    CoreWriter,
    SqliteWriter,
    _time_binder,
    read_separately,
    sqlite_text,
    writer_for,
)
from collector.services.timetables import set_timetable
from collector.wire_validation import INTEGER_MAX
from tests.collector.conftest import T0, Enrolled, batch_dict, count, make_report

STAMPS = [datetime(2025, 3, 3, 9, 0, tzinfo=UTC),  # no microseconds: still written
          datetime(2025, 3, 3, 9, 0, 0, 1, tzinfo=UTC),
          datetime(2025, 6, 1, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=-5))),
          datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC)]
NO_TIMETABLE = BatchContext(None, frozenset())


@pytest.mark.parametrize("stamp", STAMPS, ids=str)
def test_sqlite_text_is_what_sqlalchemy_binds(stamp: datetime) -> None:
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        assert sqlite_text(stamp) == _time_binder(conn)(stamp)


def test_sqlite_text_refuses_a_naive_datetime() -> None:
    with pytest.raises(ValueError, match="naive datetime 2025-03-03T09:00:00"):
        sqlite_text(datetime(2025, 3, 3, 9, 0))


def identity(engine: Engine, enrolled: Enrolled) -> AgentIdentity:
    with Session(engine) as session:
        agent = session.get(Agent, enrolled.agent_id)
        assert agent is not None
        return AgentIdentity(agent.id, agent.site_id, agent.room_id)


def query(who: AgentIdentity, report_ids: list[str], job_ids: list[str] | None = None,
          **agent_values: Any) -> BatchQuery:
    return BatchQuery(who.agent_id, who.site_id, who.room_id, report_ids, job_ids or [],
                      {"last_seen": T0, **agent_values}, runs=3)


def results() -> list[ProbeResult]:
    def run(probe: str, target: str | None, at: datetime, ms: list[Measurement],
            status: str = "ok", reason: str | None = None) -> ProbeResult:
        return ProbeResult(probe, status, at, at + timedelta(seconds=2),  # type: ignore[arg-type]
                           target, reason, ms)
    return [run("latency", "https://a.example/\t\\tab", T0, [
                Measurement("tcp_connect_ms", "ms", "tcp", value=21.5, stat="p50", samples=5),
                Measurement("tcp_connect_ms", "ms", "tcp", value=40.25, stat="max", samples=5)]),
            run("wifi", "wlan0", T0 + timedelta(microseconds=7), [
                Measurement("ssid_hash", "", "hmac", text="ab\ncd")]),
            run("latency", "b.example", T0, [], "failed", "DNS lookup failed: 'x'")]


def stored(engine: Engine, report_ids: list[str]) -> list[tuple[Any, ...]]:
    """Every stored column of those reports, their runs and measurements, ids replaced by
    the report id (times as the database returns them: text on SQLite)."""
    marks = ", ".join(f":r{i}" for i in range(len(report_ids)))
    params = {f"r{i}": rid for i, rid in enumerate(report_ids)}
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(
            "SELECT r.report_id, r.agent_id, r.created_at, r.received_at, r.schema_version, "
            "r.agent_version, r.spool_dropped, r.trigger, r.job_id, r.clock_offset_s, "
            "p.probe, p.target, p.status, p.reason, p.started_at, p.finished_at, "
            "m.agent_id, m.site_id, m.room_id, m.time, m.probe, m.target, m.metric, m.value, "
            "m.text, m.unit, m.method, m.stat, m.samples, m.period, m.in_lesson "
            "FROM report r JOIN proberun p ON p.report_pk = r.id "
            "LEFT JOIN measurement m ON m.probe_run_id = p.id AND m.report_pk = r.id "
            f"WHERE r.report_id IN ({marks}) "
            "ORDER BY p.started_at, p.probe, m.value, m.text"), params)]


@pytest.mark.both_backends
def test_fast_writer_stores_the_same_rows_as_sqlalchemy_core(
        enrolled: Enrolled, engine: Engine, db_backend: str) -> None:
    who = identity(engine, enrolled)
    fast, core = (make_report(enrolled.agent_id, results()) for _ in range(2))
    core.report_id = uuid.UUID(int=1)
    now = T0 + timedelta(hours=1)
    with Session(engine) as session:
        conn = session.connection()
        writer = writer_for(conn)
        assert isinstance(writer, SqliteWriter if db_backend == "sqlite" else CopyWriter)
        writer.read(conn, [query(who, [str(fast.report_id)])])  # draws the ids it writes with
        assert writer.write(conn, _rows(who, [fast], now, NO_TIMETABLE, writer.stamp)) == 3
        portable = CoreWriter()
        assert portable.write(conn, _rows(who, [core], now, NO_TIMETABLE, portable.stamp)) == 3
        session.commit()
    rows = stored(engine, [str(fast.report_id)])
    assert len(rows) == 4  # two measured runs (3 measurements) and the failed run
    assert [r[1:] for r in rows] == [r[1:] for r in stored(engine, [str(core.report_id)])]
    if db_backend == "sqlite":  # the text SQLAlchemy writes, microseconds always there
        assert rows[0][2:4] == ("2025-03-03 09:00:00.000000", "2025-03-03 10:00:00.000000")


@pytest.mark.both_backends
def test_each_writer_reads_what_the_separate_statements_read(
        client: TestClient, enrolled: Enrolled, engine: Engine, site_token: str) -> None:
    """The one-statement read of PostgreSQL (and SQLite's separate ones) against the
    reference: the duplicates, only the jobs of the agent's own room, the timetable, and
    the agent's update (version and clock offset only when given)."""
    from collector.models import Job, Site
    from tests.collector.conftest import enrol
    who = identity(engine, enrolled)
    stored_report = make_report(enrolled.agent_id, results())
    store_batch(engine, who, ReportBatch([stored_report]), T0)
    other = identity(engine, enrol(client, site_token, "Another room"))
    with Session(engine) as session:
        site = session.get(Site, who.site_id)
        assert site is not None
        set_timetable(session, site, {"timezone": "Europe/London", "periods": [
            {"name": "P1", "start": "09:00", "end": "10:00"}]}, T0)
        for job_id, room in (("job-mine", who.room_id), ("job-theirs", other.room_id)):
            session.add(Job(id=job_id, site_id=who.site_id, room_id=room, kind="burst",
                            start_at=T0))
        session.commit()
    ids = [str(stored_report.report_id), str(uuid.uuid4())]
    jobs = ["job-mine", "job-theirs", "job-unknown"]
    got: list[tuple[BatchReads, tuple[Any, ...]]] = []
    for read in ("writer", "reference"):
        for values in ({"agent_version": "9.9", "clock_offset_s": -0.25}, {}):
            with Session(engine) as session:
                conn = session.connection()
                reader = writer_for(conn).read if read == "writer" else read_separately
                (reads,) = reader(conn, [query(who, ids, jobs, **values)])
                agent = session.get(Agent, who.agent_id)
                assert agent is not None
                got.append((reads, (agent.agent_version, agent.clock_offset_s)))
                session.rollback()
    assert got[0] == got[2] and got[1] == got[3]
    reads, agent_state = got[0]
    assert reads.known == {str(stored_report.report_id)}
    assert reads.room_jobs == {"job-mine"}
    assert reads.timetable is not None and '"P1"' in reads.timetable
    assert agent_state == ("9.9", -0.25)
    assert got[1][1] != ("9.9", -0.25)  # not given: left as they were


@pytest.mark.both_backends
def test_a_stored_report_id_is_sqlalchemys_integrity_error(enrolled: Enrolled,
                                                           engine: Engine) -> None:
    who = identity(engine, enrolled)
    report = make_report(enrolled.agent_id, results())
    for attempt in (1, 2):
        with Session(engine) as session:
            conn = session.connection()
            writer = writer_for(conn)
            writer.read(conn, [query(who, [str(report.report_id)])])
            rows = _rows(who, [report], T0, NO_TIMETABLE, writer.stamp)
            if attempt == 1:
                writer.write(conn, rows)
                session.commit()
            else:
                with pytest.raises(IntegrityError, match="report_id|UNIQUE"):
                    writer.write(conn, rows)
                session.rollback()
    assert len(stored(engine, [str(report.report_id)])) == 4


@pytest.mark.both_backends
@pytest.mark.parametrize(("where", "field", "problem"), [
    ("report", "spool_dropped", "spool_dropped 3000000000 is above 2147483647"),
    ("measurement", "samples", "measurements[0]: samples 3000000000 is above 2147483647"),
])
def test_integers_the_database_cannot_hold_are_422(client: TestClient, enrolled: Enrolled,
                                                   where: str, field: str,
                                                   problem: str) -> None:
    batch: Any = batch_dict(make_report(enrolled.agent_id))
    target = batch["reports"][0] if where == "report" else (
        batch["reports"][0]["results"][0]["measurements"][0])
    target[field] = INTEGER_MAX + 852516353
    resp = client.post("/api/v1/reports", headers=enrolled.headers,
                       content=json.dumps(batch).encode())
    assert resp.status_code == 422, resp.text
    assert any(problem in p for p in resp.json()["problems"]), resp.json()


def test_a_good_batch_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from collector import wire_validation

    def second_parse(_body: bytes) -> None:
        raise AssertionError("a good batch was parsed a second time")

    monkeypatch.setattr(wire_validation, "_load_json", second_parse)
    body = json.dumps(batch_dict(make_report("agent-7"))).encode()
    assert wire_validation.parse_batch(body).reports[0].agent_id == "agent-7"


def test_sqlite_writers_of_one_process_queue_on_a_lock_not_on_the_database(
        enrolled: Enrolled, engine: Engine) -> None:
    from collector.db import _sqlite_pragmas

    impatient = create_engine(engine.url, connect_args={"timeout": 0,  # no busy waiting
                                                        "check_same_thread": False})
    event.listen(impatient, "connect", _sqlite_pragmas)
    who = identity(engine, enrolled)
    batches = [ReportBatch([make_report(enrolled.agent_id, results())]) for _ in range(24)]
    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lambda b: store_batch(impatient, who, b, T0), batches))
    impatient.dispose()
    assert sum(len(r.accepted) for r in done) == 24
    assert count(engine, ReportRow) == 24


@pytest.mark.both_backends
def test_ids_past_32_bits_are_stored(client: TestClient, enrolled: Enrolled, engine: Engine,
                                     db_backend: str) -> None:
    """Reports, probe runs and measurements outgrow 32-bit ids (a trust's fleet would use
    up ``integer`` within weeks): they are 64-bit, and ingest writes them as such."""
    if db_backend != "postgresql":
        pytest.skip("SQLite's INTEGER rowid is 64-bit by nature")
    start = 3_000_000_000
    with engine.begin() as conn:
        for sequence in ("report_id_seq", "proberun_id_seq"):  # a value: run id << 16 | n
            conn.execute(text(f"ALTER SEQUENCE {sequence} RESTART WITH {start}"))
    report = make_report(enrolled.agent_id)
    resp = client.post("/api/v1/reports", headers=enrolled.headers,
                       content=json.dumps(batch_dict(report)))
    assert resp.status_code == 200, resp.text
    with engine.connect() as conn:
        ids = conn.execute(text(
            "SELECT r.id, p.id, m.id, m.report_pk, m.probe_run_id FROM report r "
            "JOIN proberun p ON p.report_pk = r.id JOIN measurement m ON m.probe_run_id = p.id "
            "WHERE r.report_id = :rid ORDER BY m.id"), {"rid": str(report.report_id)}).all()
    assert len(ids) >= 1
    assert all(value >= start for row in ids for value in row)
    assert ids[0][3] == ids[0][0] and ids[0][4] == ids[0][1]

"""Ingest: stored once per report_id, one transaction per batch, races end as duplicates."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from agent.wire import ReportBatch
from collector.models import Agent, Measurement, ProbeRun, Report
from collector.services import ingest
from collector.services.enrolment import AgentIdentity
from tests.collector.conftest import (
    T0,
    Enrolled,
    batch_body,
    count,
    enrol,
    failed_result,
    latency_result,
    make_report,
)


@pytest.mark.both_backends
def test_batch_is_stored_with_denormalised_measurements(client: TestClient, enrolled: Enrolled,
                                                        engine: Engine) -> None:
    with Session(engine) as session:
        agent = session.get(Agent, enrolled.agent_id)
        assert agent is not None
        agent.last_seen = T0
        session.add(agent)
        session.commit()
    first = make_report(enrolled.agent_id, [latency_result(p50=42.0), failed_result()])
    second = make_report(enrolled.agent_id, [latency_result("https://eu.teams.microsoft.com/",
                                                            p50=30.0,
                                                            start=T0 + timedelta(hours=1))])
    resp = client.post("/api/v1/reports", headers=enrolled.headers,
                       content=batch_body(first, second))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": [str(first.report_id), str(second.report_id)],
                           "duplicates": []}
    assert (count(engine, Report), count(engine, ProbeRun), count(engine, Measurement)) == (
        2, 3, 4)
    with Session(engine) as session:
        failed = session.exec(select(ProbeRun).where(ProbeRun.status == "failed")).one()
        assert (failed.reason, failed.target) == ("DNS lookup failed", "teams.microsoft.com")
        m = session.exec(select(Measurement).where(Measurement.value == 30.0)).one()
        agent = session.get(Agent, enrolled.agent_id)
        assert agent is not None
        assert (m.agent_id, m.site_id, m.room_id) == (agent.id, agent.site_id, agent.room_id)
        assert (m.time, m.probe, m.target) == (T0 + timedelta(hours=1), "latency",
                                               "https://eu.teams.microsoft.com/")
        assert (m.metric, m.unit, m.method, m.stat, m.samples) == (
            "tcp_connect_ms", "ms", "tcp", "p50", 5)
        assert m.time.tzinfo is not None
        assert agent.last_seen is not None and agent.last_seen >= agent.created_at > T0


@pytest.mark.both_backends
def test_same_batch_twice_is_all_duplicates(client: TestClient, enrolled: Enrolled,
                                            engine: Engine) -> None:
    body = batch_body(make_report(enrolled.agent_id), make_report(enrolled.agent_id))
    first = client.post("/api/v1/reports", headers=enrolled.headers, content=body).json()
    stored = count(engine, Measurement)
    second = client.post("/api/v1/reports", headers=enrolled.headers, content=body).json()
    assert second == {"accepted": [], "duplicates": first["accepted"]}
    assert count(engine, Measurement) == stored == 4
    assert count(engine, Report) == 2


@pytest.mark.both_backends
def test_partly_known_batch_stores_only_the_new_report(client: TestClient, enrolled: Enrolled,
                                                       engine: Engine) -> None:
    old, new = make_report(enrolled.agent_id), make_report(enrolled.agent_id)
    client.post("/api/v1/reports", headers=enrolled.headers, content=batch_body(old))
    resp = client.post("/api/v1/reports", headers=enrolled.headers,
                       content=batch_body(old, new, new))
    assert resp.json() == {"accepted": [str(new.report_id)],
                           "duplicates": [str(old.report_id), str(new.report_id)]}
    assert count(engine, Report) == 2


def blind_reads(monkeypatch: pytest.MonkeyPatch, times: int) -> list[int]:
    """The first ``times`` reads of ingest see none of the stored report ids; the list
    returned counts the reads."""
    real = ingest.writer_for
    calls: list[int] = []

    def writer_for(conn: Any) -> Any:
        writer = real(conn)
        read = writer.read

        def blind(conn: Any, queries: Any) -> Any:
            calls.append(1)
            reads = read(conn, queries)
            return [replace(r, known=frozenset()) for r in reads] if len(calls) <= times \
                else reads
        writer.read = blind
        return writer
    monkeypatch.setattr(ingest, "writer_for", writer_for)
    return calls


@pytest.mark.both_backends
def test_concurrent_upload_of_same_report_ends_as_duplicate(
        client: TestClient, enrolled: Enrolled, engine: Engine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    report = make_report(enrolled.agent_id)
    client.post("/api/v1/reports", headers=enrolled.headers, content=batch_body(report))
    calls = blind_reads(monkeypatch, times=1)  # misses the stored id, as a race would
    fresh = make_report(enrolled.agent_id)
    resp = client.post("/api/v1/reports", headers=enrolled.headers,
                       content=batch_body(fresh, report))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": [str(fresh.report_id)],
                           "duplicates": [str(report.report_id)]}
    assert len(calls) == 2
    assert count(engine, Report) == 2


@pytest.mark.both_backends
def test_store_batch_gives_up_after_repeated_conflicts(enrolled: Enrolled, engine: Engine,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    report = make_report(enrolled.agent_id)
    with Session(engine) as session:
        agent = session.get(Agent, enrolled.agent_id)
        assert agent is not None
        who = AgentIdentity(agent.id, agent.site_id, agent.room_id)
    ingest.store_batch(engine, who, ReportBatch([report]), T0)
    blind_reads(monkeypatch, times=ingest.ATTEMPTS)
    with pytest.raises(IntegrityError):
        ingest.store_batch(engine, who, ReportBatch([report]), T0)
    assert count(engine, Report) == 1


@pytest.mark.both_backends
def test_report_of_another_agent_is_403_and_nothing_stored(client: TestClient, site_token: str,
                                                           enrolled: Enrolled,
                                                           engine: Engine) -> None:
    other = enrol(client, site_token, "Room 99")
    mine, theirs = make_report(enrolled.agent_id), make_report(other.agent_id)
    resp = client.post("/api/v1/reports", headers=enrolled.headers,
                       content=batch_body(mine, theirs))
    assert resp.status_code == 403
    assert resp.json()["problems"] == [
        f"report {theirs.report_id}: agent_id {other.agent_id!r} is not this credential's agent"]
    assert count(engine, Report) == 0


@pytest.mark.both_backends
def test_connections_the_database_dropped_are_replaced_not_answered_503(
        client: TestClient, enrolled: Enrolled, engine: Engine, db_backend: str) -> None:
    """The pool does not ping before each use: after the server drops its connections (a
    restart, a failover) the next upload and control poll still succeed, on new ones."""
    if db_backend != "postgresql":
        pytest.skip("only a server database drops the pool's connections")
    first = make_report(enrolled.agent_id)
    assert client.post("/api/v1/reports", headers=enrolled.headers,
                       content=batch_body(first)).status_code == 200
    drop_connections(engine)
    second = make_report(enrolled.agent_id)
    resp = client.post("/api/v1/reports", headers=enrolled.headers, content=batch_body(second))
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == [str(second.report_id)]
    assert client.get("/api/v1/agent/control", headers=enrolled.headers).status_code == 200
    assert count(engine, Report) == 2


def drop_connections(engine: Engine) -> None:
    """The database server ends every connection of ``engine``'s pool (a restart would)."""
    import psycopg

    with engine.connect():  # at least one pooled connection, returned at once
        pass
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
    assert dropped is not None and dropped[0] >= 1


@pytest.mark.both_backends
def test_a_batch_whose_connection_was_dropped_is_stored_on_a_new_one(
        enrolled: Enrolled, engine: Engine, db_backend: str) -> None:
    """Straight to ingest (no credential check to find the dead connection first): the
    batch's own first statement meets it, and the batch is stored on a new connection."""
    if db_backend != "postgresql":
        pytest.skip("only a server database drops the pool's connections")
    with Session(engine) as session:
        agent = session.get(Agent, enrolled.agent_id)
        assert agent is not None
        who = AgentIdentity(agent.id, agent.site_id, agent.room_id)
    drop_connections(engine)
    report = make_report(enrolled.agent_id)
    response = ingest.store_batch(engine, who, ReportBatch([report]), T0)
    assert response.accepted == [str(report.report_id)]
    assert count(engine, Report) == 1

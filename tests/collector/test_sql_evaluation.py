"""The fast evaluation path (:mod:`collector.services.sample_query`) gives exactly the
verdicts of the rows-in-Python path, on SQLite and PostgreSQL.

The site is the benchmark's generator (rooms, agents, a term, a timetable, room tests,
failed runs) plus rows that stress the edges: full-precision floats, a value-less row, a
device that moved rooms, one target written three ways (URL, upper case, trailing dot),
a room whose only rows are a room test, a device with only Wi-Fi rows, and enough
goodput in two rooms for the combined capacity of several products. Verdicts are
compared with ``==`` on the frozen dataclasses: every status, reason, value, count, time
and room.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlmodel import Session, col, select

from benchmarks.evaluation_site import TERM_START, Shape, create_site, load
from collector.models import Agent, Measurement, ProbeRun, Report, Room, Site
from collector.services import binary_fetch
from collector.services.profiles import profile_registry
from collector.services.queries import measurement_rows
from collector.services.readiness import evaluate_many, evaluate_prepared
from collector.services.rows import MeasurementRow
from collector.services.sample_query import prepared_site
from collector.services.site_report import readiness_report, report_dict, report_metrics
from tests.pg.plugin import pg_server, pg_url  # noqa: F401 (fixtures)

NOW = datetime(2025, 12, 20, tzinfo=UTC)
SITE = "Benchmark School"
TEAMS = "microsoft-teams-media"


def _edge_rows(session: Session) -> None:
    """Rows the generator does not make (see the module text)."""
    rng = random.Random(7)
    site = session.exec(select(Site)).one()
    rooms = session.exec(select(Room).order_by(col(Room.id))).all()
    agents = session.exec(select(Agent).order_by(col(Agent.id))).all()
    report = session.exec(select(Report).order_by(col(Report.id))).first()
    assert site.id and report and report.id and rooms[0].id
    lonely = Room(site_id=site.id, name="R99 room test only")
    session.add(lonely)
    session.flush()
    job = Report(report_id="job-only", agent_id=agents[0].id, created_at=TERM_START,
                 received_at=TERM_START, schema_version=1, trigger="job", job_id="j1")
    session.add(job)
    session.flush()
    assert lonely.id and job.id

    def add(agent: Agent, room_id: int, metric: str, value: float | None, *,
            target: str | None = "teams.microsoft.com:443", stat: str = "p50",
            unit: str = "ms", day: int = 20, period: str | None = "P2",
            in_lesson: bool | None = True, report_pk: int = report.id or 0) -> None:
        time = TERM_START + timedelta(days=day, hours=10, seconds=rng.randrange(3600))
        own_run = ProbeRun(report_pk=report_pk, probe="latency", target=target, status="ok",
                           started_at=time, finished_at=time)
        session.add(own_run)
        session.flush()
        session.add(Measurement(
            report_pk=report_pk, probe_run_id=own_run.id or 0, agent_id=agent.id,
            site_id=site.id or 0, room_id=room_id, time=time,
            probe="latency", target=target, metric=metric, value=value,
            text=None if value is not None else "timeout", unit=unit, method="tcp",
            stat=stat, period=period, in_lesson=in_lesson))

    for i in range(60):  # full-precision floats, several targets' spellings
        target = ("teams.microsoft.com:443", "https://TEAMS.microsoft.com./x",
                  "TEAMS.Microsoft.com")[i % 3]
        add(agents[i % 7], rooms[i % 3].id or 0, "tcp_connect_ms", rng.uniform(5, 150),
            target=target, in_lesson=(True, False, None)[i % 3],
            period=("P2", None, None)[i % 3])
        add(agents[i % 7], rooms[i % 3].id or 0, "jitter_ms", rng.random() * 40,
            stat="value", day=21)
    for i in range(40):  # enough goodput in two rooms for several products' capacity
        add(agents[i % 5], rooms[i % 2].id or 0, ("download_mbps", "upload_mbps")[i // 20],
            rng.uniform(5, 400), target="https://speedtest.school.example/speed/",
            stat="value", unit="Mbps", day=22 + i % 3)
    add(agents[1], rooms[0].id, "tcp_connect_ms", None)  # no value: never a sample
    when = TERM_START + timedelta(days=20, hours=11)  # one run, a value missing in it
    pair = ProbeRun(report_pk=report.id or 0, probe="latency",
                    target="teams.microsoft.com:443", status="ok", started_at=when,
                    finished_at=when)
    session.add(pair)
    session.flush()
    for metric, value, stat in (("tcp_connect_ms", None, "p50"), ("jitter_ms", 12.5, "value"),
                                ("tcp_connect_ms", 47.25, "p95")):
        session.add(Measurement(
            report_pk=report.id or 0, probe_run_id=pair.id or 0, agent_id=agents[4].id,
            site_id=site.id or 0, room_id=rooms[1].id or 0, time=when, probe="latency",
            target="teams.microsoft.com:443", metric=metric, value=value,
            text=None if value is not None else "timeout", unit="ms", method="tcp",
            stat=stat, period="P2", in_lesson=True))
        session.flush()
    moved = agents[2]  # its newest rows are in another room
    for _ in range(6):
        add(moved, rooms[-1].id or 0, "tcp_connect_ms", rng.uniform(90, 130), day=40)
    add(agents[3], lonely.id, "download_mbps", 300.0, target="https://speedtest.x/",
        stat="value", unit="Mbps", report_pk=job.id)
    wifi_only = Agent(id="wifi-only-agent", site_id=site.id, room_id=lonely.id,
                      credential_hash="w" * 64)
    session.add(wifi_only)
    session.flush()
    add(wifi_only, lonely.id, "bss_station_count", 44.0, target=None, stat="value",
        unit="count")
    session.commit()


def _make_site(engine: Engine) -> None:
    load(engine, create_site(engine, Shape(rows=3000, rooms=4, agents_per_room=5, days=10)))
    with Session(engine) as session:
        _edge_rows(session)


def _orm_rows(session: Session, site: Site) -> list[MeasurementRow]:
    """The original ORM query ``measurement_rows`` replaced (the reference)."""
    query = (select(Measurement, Room.name, Report)
             .join(Room, col(Room.id) == Measurement.room_id)
             .join(Report, col(Report.id) == Measurement.report_pk)
             .where(Measurement.site_id == site.id)
             .order_by(col(Measurement.time), col(Measurement.id)))
    return [MeasurementRow(
        time=m.time, agent_id=m.agent_id, room=room, probe=m.probe, target=m.target,
        metric=m.metric, value=m.value, unit=m.unit, method=m.method,
        report_id=report.report_id, stat=m.stat, samples=m.samples, text=m.text,
        period=m.period, in_lesson=m.in_lesson, trigger=report.trigger, job_id=report.job_id)
        for m, room, report in session.exec(query).all()]


def _check_same_verdicts(engine: Engine) -> None:
    with Session(engine) as session:
        site = session.exec(select(Site).where(Site.name == SITE)).one()
        assert measurement_rows(session, site) == _orm_rows(session, site)
        statuses: set[str] = set()
        for profile_id in (None, TEAMS):
            slow = readiness_report(session, SITE, profile_id, None, NOW, fast=False)
            fast = readiness_report(session, SITE, profile_id, None, NOW)
            assert fast == slow
            assert report_dict(fast) == report_dict(slow)
            assert bool(fast.combined) is (profile_id is None)  # several products' capacity
            statuses |= {r.status for v in slow.verdicts for r in v.requirements}
            statuses |= {w.status for v in slow.verdicts for r in v.requirements
                         for w in r.windows.values()}
        assert statuses == {"pass", "warn", "fail", "unknown"}  # every rule path is compared
        remedies = [r.remediation or "" for v in fast.verdicts for r in v.requirements]
        assert any("channel use with" in text for text in remedies)  # Wi-Fi load quoted
    for aggregate in (False, True) if engine.dialect.name == "postgresql" else (False,):
        _check_prepared(engine, aggregate)


def _check_prepared(engine: Engine, aggregate: bool) -> None:
    """``prepared_site`` in a window: the verdicts of the rows of that window."""
    with Session(engine) as session:
        site = session.exec(select(Site).where(Site.name == SITE)).one()
        profiles = list(profile_registry(session).values())
        metrics = report_metrics(profiles)
        since, until = TERM_START + timedelta(days=3), TERM_START + timedelta(days=25)
        rows = measurement_rows(session, site, metrics, since, until)
        expected = evaluate_many(profiles, rows, [], NOW, site=SITE)
        prepared = prepared_site(session, site, profiles, metrics, since, until,
                                 aggregate=aggregate)
        assert evaluate_prepared(profiles, prepared, [], NOW, site=SITE) == expected
        assert "R99 room test only" in prepared.rooms
        assert "wifi-only-agent" in prepared.devices


@pytest.fixture
def sqlite_engine() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'eval.db'}")
        yield engine
        engine.dispose()


def test_sqlite_fast_path_gives_the_same_verdicts(sqlite_engine: Engine) -> None:
    _make_site(sqlite_engine)
    _check_same_verdicts(sqlite_engine)


def test_postgresql_grouped_cells_give_the_same_verdicts(pg_url: str) -> None:  # noqa: F811
    engine = create_engine(pg_url)
    try:
        _make_site(engine)
        _check_same_verdicts(engine)
    finally:
        engine.dispose()


def test_postgresql_device_hash_fallbacks_give_the_same_verdicts(
        pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Devices travel as 64-bit hashes of their ids: a hash that is not one of the site's
    devices is looked up among every device; two devices hashing alike (never seen:
    about 1 in 10^13) or a hash no device has make the rows stream into cells instead."""
    engine = create_engine(pg_url)
    try:
        _make_site(engine)
        real = binary_fetch.agent_hashes

        def site_unknown(session: Session, site: Site, unknown: Sequence[int] = ()
                         ) -> dict[int, str]:
            return real(session, site, unknown) if unknown else {}

        monkeypatch.setattr(binary_fetch, "agent_hashes", site_unknown)
        _check_prepared(engine, aggregate=True)

        def alike(*_args: object) -> dict[int, str]:
            raise binary_fetch.Unmapped("agents 'a' and 'b' share a hash")

        monkeypatch.setattr(binary_fetch, "agent_hashes", alike)
        _check_prepared(engine, aggregate=True)
        monkeypatch.setattr(binary_fetch, "agent_hashes", lambda *_args: {})  # no agent
        _check_prepared(engine, aggregate=True)
    finally:
        engine.dispose()


def test_no_data_is_unknown_on_both_paths(sqlite_engine: Engine) -> None:
    load(sqlite_engine, create_site(sqlite_engine, Shape(rows=0, rooms=2, agents_per_room=1)))
    with Session(sqlite_engine) as session:
        fast = readiness_report(session, SITE, TEAMS, None, NOW)
        assert fast == readiness_report(session, SITE, TEAMS, None, NOW, fast=False)
    assert [r.status for r in fast.verdicts[0].requirements] == ["unknown"] * 3

"""Fixtures: a collector app on a fresh SQLite file, an enrolled agent, report builders."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func
from sqlmodel import Session, SQLModel, select

from agent.wire import Measurement, ProbeResult, Report, ReportBatch, to_jsonable
from collector.app import create_app
from collector.services.sites import create_site
from collector.settings import Settings

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SITE = "Test School"


@dataclass(frozen=True)
class Enrolled:
    agent_id: str
    credential: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/t.db", data_dir=tmp_path)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def engine(app: FastAPI) -> Engine:
    engine: Engine = app.state.engine
    return engine


@pytest.fixture
def admin_headers(engine: Engine) -> dict[str, str]:
    """``Authorization`` for a fresh administrator key."""
    from collector.services.admin import create_admin_key

    with Session(engine) as session:
        key = create_admin_key(session, "test admin")
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def site_token(engine: Engine) -> str:
    with Session(engine) as session:
        return create_site(session, SITE)


def enrol(client: TestClient, token: str, room: str = "Room 12") -> Enrolled:
    resp = client.post("/api/v1/enrol",
                       json={"token": token, "room": room, "agent_version": "0.1.0"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    return Enrolled(body["agent_id"], body["credential"])


@pytest.fixture
def enrolled(client: TestClient, site_token: str) -> Enrolled:
    return enrol(client, site_token)


def latency_result(target: str = "teams.microsoft.com", p50: float = 42.0,
                   start: datetime = T0) -> ProbeResult:
    return ProbeResult(
        probe="latency", status="ok", target=target, started_at=start,
        finished_at=start + timedelta(seconds=2),
        measurements=[
            Measurement("tcp_connect_ms", "ms", "tcp", value=p50, stat="p50", samples=5),
            Measurement("tcp_connect_ms", "ms", "tcp", value=p50 * 2, stat="max", samples=5),
        ])


def failed_result(target: str = "teams.microsoft.com", reason: str = "DNS lookup failed",
                  start: datetime = T0) -> ProbeResult:
    return ProbeResult(probe="latency", status="failed", target=target, reason=reason,
                       started_at=start, finished_at=start + timedelta(seconds=1))


def make_report(agent_id: str, results: list[ProbeResult] | None = None,
                created_at: datetime = T0) -> Report:
    return Report(report_id=uuid.uuid4(), agent_id=agent_id, created_at=created_at,
                  agent_version="0.1.0",
                  results=[latency_result()] if results is None else results)


def batch_dict(*reports: Report) -> dict[str, object]:
    return to_jsonable(ReportBatch(reports=list(reports)))


def batch_body(*reports: Report) -> bytes:
    return json.dumps(batch_dict(*reports)).encode()


def count(engine: Engine, model: type[SQLModel]) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


ALWAYS_IN_LESSON = {
    "timezone": "UTC", "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    "periods": [{"name": "Lesson", "start": "00:00", "end": "23:59"}],
}
"""A timetable that puts (almost) every minute in a lesson: for tests of profiles that
judge lessons only (Microsoft says its Teams targets apply under peak load)."""


def set_always_in_lesson(engine: Engine, site: str = SITE) -> None:
    """Give ``site`` the :data:`ALWAYS_IN_LESSON` timetable (before uploading)."""
    from collector.services.sites import get_site
    from collector.services.timetables import set_timetable

    with Session(engine) as session:
        set_timetable(session, get_site(session, site), ALWAYS_IN_LESSON, datetime.now(UTC))

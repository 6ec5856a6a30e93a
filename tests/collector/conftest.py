"""Fixtures: a collector app on a fresh SQLite file, an enrolled agent, report builders."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
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


# --- admin web login (collector.web_auth) ---------------------------------------------

ADMIN_USER = "test-admin"
ADMIN_PASSWORD = "test password 0123"


def login(client: TestClient, username: str = ADMIN_USER, password: str = ADMIN_PASSWORD,
          next_path: str = "/") -> httpx.Response:
    """Log ``client`` in through the real ``/login`` form; returns the POST's response."""
    import re

    page = client.get("/login", params={"next": next_path})
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the login form has no csrf_token field"
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": found.group(1), "next": next_path},
                       follow_redirects=False)


def csrf_token(client: TestClient) -> str:
    """The CSRF token in ``client``'s session cookie: what ``{{ csrf_input(session) }}``
    puts in forms (send it as the ``csrf_token`` form field)."""
    from itsdangerous import URLSafeTimedSerializer

    from collector.web_auth import COOKIE

    raw = client.cookies.get(COOKIE)
    assert raw, "no session cookie: log in first"
    _valid, payload = URLSafeTimedSerializer(b"unused").loads_unsafe(raw)
    assert isinstance(payload, dict) and isinstance(payload.get("c"), str), payload
    return str(payload["c"])


@pytest.fixture
def admin_user(engine: Engine) -> str:
    """An administrator account (:data:`ADMIN_USER` / :data:`ADMIN_PASSWORD`)."""
    from collector.services.users import create_user

    with Session(engine) as session:
        create_user(session, ADMIN_USER, ADMIN_PASSWORD)
    return ADMIN_USER


@pytest.fixture
def admin_client(app: FastAPI, client: TestClient, admin_user: str) -> Iterator[TestClient]:
    """A second client of the same app (started by ``client``), logged in as an admin
    through the real login form; ``client`` itself stays logged out."""
    admin = TestClient(app)
    resp = login(admin)
    assert resp.status_code == 303, resp.text
    yield admin
    admin.close()


@pytest.fixture
def admin_cookies(admin_client: TestClient) -> dict[str, str]:
    """The logged-in admin's cookies (``{"classprobe_session": ...}``), e.g. for another
    HTTP client or a browser."""
    return {name: value for name, value in admin_client.cookies.items()}


@pytest.fixture
def admin_csrf(admin_client: TestClient) -> str:
    """The logged-in admin's CSRF token, for POST forms sent with ``admin_client``."""
    return csrf_token(admin_client)

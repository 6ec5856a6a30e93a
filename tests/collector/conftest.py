"""Fixtures: a collector app on a fresh SQLite file, an enrolled agent, report builders."""

from __future__ import annotations

import itertools
import json
import shutil
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
from tests.pg.server import PgServer

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
SITE = "Test School"


@dataclass(frozen=True)
class Enrolled:
    agent_id: str
    credential: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


BACKENDS = ["sqlite", "postgresql"]
_pg_names = itertools.count()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_backends`` run once per database in :data:`BACKENDS` (the
    PostgreSQL case skips, with the reason, where PostgreSQL is missing)."""
    if (metafunc.definition.get_closest_marker("both_backends")
            and "db_backend" in metafunc.fixturenames):
        metafunc.parametrize("db_backend", BACKENDS, indirect=True)


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    """The collector's database engine: "sqlite", or "postgresql" for the second run of
    a ``@pytest.mark.both_backends`` test."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file already at the newest revision, copied for each test: running the
    migrations once per session instead of once per test (test_migrations.py runs them
    from empty)."""
    from collector.db import init_db, make_engine

    path = tmp_path_factory.mktemp("migrated") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    engine.dispose()  # the last connection out checkpoints the WAL into the file
    return path


@pytest.fixture(scope="session")
def migrated_pg_template(pg_server: PgServer) -> str:
    """A PostgreSQL database at the newest revision, the template of each test's own."""
    from collector.db import init_db, make_engine

    name = "classprobe_migrated_template"
    engine = make_engine(pg_server.create_database(name))
    init_db(engine)
    engine.dispose()  # CREATE DATABASE ... TEMPLATE needs it unused
    return name


@pytest.fixture
def migrated_pg_url(pg_server: PgServer, migrated_pg_template: str) -> str:
    """A fresh PostgreSQL database, already migrated (a copy of the template)."""
    import psycopg

    name = f"api_{next(_pg_names)}"
    with psycopg.connect(f"host=127.0.0.1 port={pg_server.port} user=postgres "
                         "dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{migrated_pg_template}"')
    return pg_server.url(name)


@pytest.fixture
def settings(tmp_path: Path, db_backend: str, request: pytest.FixtureRequest) -> Settings:
    if db_backend == "postgresql":
        url = str(request.getfixturevalue("migrated_pg_url"))
    else:
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), tmp_path / "t.db")
        url = f"sqlite:///{tmp_path}/t.db"
    return Settings(database_url=url, data_dir=tmp_path)


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(settings)
    yield app
    app.state.engine.dispose()  # PostgreSQL: give the connections back to the server


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
    "periods": [{"name": "Lesson", "start": "00:00", "end": "23:59:59"}],
}
"""A timetable that puts every second but the day's last in a lesson: for tests of
profiles that judge lessons only (Microsoft says its Teams targets apply under peak load)."""


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

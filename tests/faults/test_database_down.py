"""Database down: the ingest endpoint answers 503 "database unavailable" (no traceback,
no 500), the agent keeps its reports and keeps spooling, and they all arrive once the
database is back. PostgreSQL stopped with pg_ctl (the realistic case); skipped when no
PostgreSQL server can be started here."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from collector.app import create_app
from collector.db import make_engine
from collector.services.sites import create_site
from collector.settings import Settings
from tests.e2e.conftest import Collector
from tests.faults.conftest import cycle, enrol, stored_reports
from tests.pg.server import PgServer, _bin, throwaway_server, unavailable_reason

pytestmark = pytest.mark.slow


@dataclass
class PgCollector(Collector):
    db_url: str = ""

    @property
    def db(self) -> str:
        return self.db_url


def pg_ctl(server: PgServer, *argv: str) -> None:
    tool = _bin("pg_ctl")
    assert tool
    subprocess.run(server._as_owner([tool, "-D", str(server.data), *argv]), check=True,
                   capture_output=True, timeout=120)


def stop(server: PgServer) -> None:
    """A clean shutdown, as an administrator does (``server.stop()`` is ``-m immediate``,
    which loses commits not yet flushed under the test server's synchronous_commit=off)."""
    pg_ctl(server, "-m", "fast", "-w", "stop")


def restart(server: PgServer) -> None:
    options = f"-h 127.0.0.1 -p {server.port} -k {server.workdir} -c fsync=off"
    pg_ctl(server, "-o", options, "-w", "-l", str(server.workdir / "server.log"), "start")


@pytest.fixture
def own_pg() -> Iterator[PgServer]:
    """A server of this test's own: it is stopped mid-test (not the session's server)."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with throwaway_server("classprobe-pgdown-") as server:
        yield server


def test_database_down_answers_503_and_agent_keeps_spooling(own_pg: PgServer,
                                                           tmp_path: Path) -> None:
    url = own_pg.create_database("faults")
    collector = PgCollector(data_dir=tmp_path / "collector", db_url=url)
    collector.data_dir.mkdir()
    collector.start()
    try:
        token = collector.create_site("down-school")
        agent = enrol(collector.url, token, tmp_path / "spool")
        t0 = datetime.now(UTC) - timedelta(hours=1)
        agent.spool.add(agent.agent_id, "0.1.0", cycle(t0))

        stop(own_pg)
        with httpx.Client(base_url=collector.url, timeout=30) as client:
            outcome = agent.uploader(client).drain()
            agent.spool.add(agent.agent_id, "0.1.0", cycle(t0 + timedelta(minutes=30)))
            raw = client.post("/api/v1/reports", json={"schema_version": 1, "reports": []},
                              headers={"Authorization": f"Bearer {agent.credential}"})
        assert raw.status_code == 503
        assert raw.json() == {"detail": "database unavailable; try again later"}
        assert raw.headers["retry-after"] == "30"
        assert outcome.error == ("collector answered 503: database unavailable; "
                                 "try again later (Retry-After 30 s)")
        assert outcome.retryable and outcome.retry_after_s == 30.0  # the agent waits that
        assert len(agent.spool.pending()) == 2  # kept, and the next cycle still spooled
        assert collector.proc is not None and collector.proc.poll() is None  # still serving

        restart(own_pg)
        with httpx.Client(base_url=collector.url, timeout=30) as client:
            after = agent.uploader(client).drain()
        assert after.ok, after.error
        assert (after.accepted, after.pending) == (2, 0)
        assert len(stored_reports(url)) == 2
    finally:
        collector.stop()


def test_sqlite_file_unreachable_answers_503(tmp_path: Path) -> None:
    """The same answer when a SQLite database cannot be opened (its directory moved)."""
    url = f"sqlite:///{tmp_path / 'db' / 'c.db'}"
    app = create_app(Settings(database_url=url, data_dir=tmp_path, notify_interval_s=0))
    with Session(app.state.engine) as session:
        token = create_site(session, "gone-school")
    with TestClient(app) as client:
        enrolled = client.post("/api/v1/enrol", json={"token": token, "room": "Lab 1"})
        assert enrolled.status_code == 200, enrolled.text
        app.state.engine.dispose()
        app.state.engine = make_engine(url)  # makes db/ if missing: move it after this
        (tmp_path / "db").rename(tmp_path / "db-moved")
        r = client.post("/api/v1/reports", json={"schema_version": 1, "reports": []},
                        headers={"Authorization": f"Bearer {enrolled.json()['credential']}"})
    assert r.status_code == 503, r.text
    assert r.json() == {"detail": "database unavailable; try again later"}

"""A small collector world for the security tests: two sites, an agent in each, an admin
API key, a logged-in admin session, and a share link of site A."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from collector.app import create_app
from collector.models import Room
from collector.services.admin import create_admin_key
from collector.services.share import create_share
from collector.services.sites import create_site
from collector.services.users import create_user
from collector.settings import Settings
from tests.collector.conftest import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    Enrolled,
    batch_body,
    csrf_token,
    enrol,
    latency_result,
    login,
    make_report,
)

SITE_A = "Alpha School"
SITE_B = "Beta School"
ROOM = "Room 1"
PROFILE = "microsoft-teams-media"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FLAG_KEY = "flag-key-of-alpha-room-1"


@dataclass
class World:
    app: FastAPI
    client: TestClient  # no cookies
    session_client: TestClient  # logged in as an admin (cookie)
    agent_a: Enrolled
    agent_b: Enrolled
    admin_key: str
    share_token: str
    share_id: int
    spare_share_id: int  # another link of site A, for tests that revoke one
    flag_key: str
    site_token_a: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def csrf(self) -> str:
        return csrf_token(self.session_client)


def report_body(agent: Enrolled, start: datetime = T0) -> bytes:
    """One new report of ``agent`` (a fresh report id each call)."""
    return batch_body(make_report(agent.agent_id, [latency_result(start=start)],
                                  created_at=start))


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def make_world(tmp: Path, **settings: object) -> World:
    app = create_app(Settings(database_url=f"sqlite:///{tmp}/w.db", data_dir=tmp,
                              notify_interval_s=0, **settings))  # type: ignore[arg-type]
    client = TestClient(app)
    client.__enter__()
    engine = app.state.engine
    with Session(engine) as db:
        token_a, token_b = create_site(db, SITE_A), create_site(db, SITE_B)
        admin_key = create_admin_key(db, "matrix")
        create_user(db, ADMIN_USER, ADMIN_PASSWORD)
    agent_a, agent_b = enrol(client, token_a, ROOM), enrol(client, token_b, ROOM)
    for agent in (agent_a, agent_b):
        resp = client.post("/api/v1/reports", content=report_body(agent),
                           headers=bearer(agent.credential))
        assert resp.status_code == 200, resp.text
    with Session(engine) as db:
        link, share_token = create_share(db, SITE_A, PROFILE, None, 7, "matrix",
                                         datetime.now(UTC))
        assert link.id is not None
        share_id = link.id
        spare, _token = create_share(db, SITE_A, PROFILE, None, 7, "matrix", datetime.now(UTC))
        assert spare.id is not None
        spare_id = spare.id
        room = db.exec(select(Room).where(Room.name == ROOM, Room.site_id == link.site_id)).one()
        room.flag_key = FLAG_KEY
        db.add(room)
        db.commit()
    session_client = TestClient(app)
    assert login(session_client).status_code == 303
    return World(app, client, session_client, agent_a, agent_b, admin_key, share_token,
                 share_id, spare_id, FLAG_KEY, token_a)


def close_world(world: World) -> None:
    world.session_client.close()
    world.client.__exit__(None, None, None)


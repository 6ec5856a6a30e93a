"""The rules behind the matrix, each shown directly: agents stay inside their site, a
share link inside its scope, and revoked or disabled credentials stop at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from collector.models import Flag, Measurement, Report
from collector.services.admin import revoke_admin_key
from collector.services.share import revoke_share
from collector.services.sites import revoke_agent
from collector.services.users import disable_user
from tests.collector.conftest import ADMIN_USER, count
from tests.security.world import (
    PROFILE,
    SITE_A,
    SITE_B,
    World,
    bearer,
    close_world,
    make_world,
    report_body,
)

A, B = quote(SITE_A), quote(SITE_B)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    yield w
    close_world(w)


def _stored(w: World) -> tuple[int, int, int]:
    engine = w.app.state.engine
    return count(engine, Report), count(engine, Measurement), count(engine, Flag)


def test_agent_of_site_a_cannot_write_reports_of_site_b(world: World) -> None:
    before = _stored(world)
    resp = world.client.post("/api/v1/reports", content=report_body(world.agent_b),
                             headers=bearer(world.agent_a.credential))
    assert resp.status_code == 403, resp.text
    assert resp.json()["detail"] == ("reports belong to another agent (credential is "
                                     f"{world.agent_a.agent_id})")
    assert _stored(world) == before


def test_agent_credential_reads_nothing_and_writes_no_admin_data(world: World) -> None:
    agent = bearer(world.agent_a.credential)
    for path in ["/api/v1/sites", f"/api/v1/sites/{A}/readiness", f"/api/v1/sites/{A}/export",
                 f"/api/v1/sites/{B}/export", f"/api/v1/sites/{A}/timetable",
                 f"/api/v1/profiles/{PROFILE}"]:
        assert world.client.get(path, headers=agent).status_code == 401, path
    put = world.client.put(f"/api/v1/sites/{B}/timetable", headers=agent, json={})
    assert put.status_code == 401
    page = world.client.get(f"/sites/{A}", headers=agent, follow_redirects=False)
    assert page.status_code == 303


def test_agent_credential_next_to_an_admin_cookie_is_still_refused(world: World) -> None:
    """A present Authorization header must itself be an admin key."""
    client = TestClient(world.app, cookies=dict(world.session_client.cookies.items()))
    assert client.get("/api/v1/sites").status_code == 200
    resp = client.get("/api/v1/sites", headers=bearer(world.agent_a.credential))
    assert resp.status_code == 401


def test_share_link_reads_only_its_site_and_profile(world: World) -> None:
    base = f"/share/{world.share_token}/report.json"
    resp = world.client.get(base, params={"profile": "google-meet", "site": SITE_B,
                                          "campaign": "x"})
    assert resp.status_code == 200
    report = resp.json()["report"]
    assert (report["site"], report["profile"]["profile"]) == (SITE_A, PROFILE)
    text = json.dumps(resp.json())
    assert SITE_B not in text and world.agent_b.agent_id not in text
    assert "google-meet" not in text
    # the token is no key to anything else
    share = bearer(world.share_token)
    for path in [f"/api/v1/sites/{A}/readiness", f"/api/v1/sites/{A}/export", "/api/v1/sites"]:
        assert world.client.get(path, headers=share).status_code == 401, path
    other = world.client.get(f"/share/{world.share_token}x/report.json")
    assert other.status_code == 404


def test_revoked_agent_stops_at_once(world: World) -> None:
    agent = bearer(world.agent_a.credential)
    assert world.client.get("/api/v1/agent/control", headers=agent).status_code == 200
    with Session(world.app.state.engine) as db:
        revoke_agent(db, world.agent_a.agent_id)
    before = _stored(world)
    assert world.client.get("/api/v1/agent/control", headers=agent).status_code == 401
    resp = world.client.post("/api/v1/reports", content=report_body(world.agent_a),
                             headers=agent)
    assert resp.status_code == 401
    assert world.client.post("/api/v1/flags", json={"note": "x"},
                             headers=agent).status_code == 401
    assert _stored(world) == before


def test_revoked_admin_key_stops_at_once(world: World) -> None:
    admin = bearer(world.admin_key)
    assert world.client.get("/api/v1/sites", headers=admin).status_code == 200
    with Session(world.app.state.engine) as db:
        assert revoke_admin_key(db, "matrix") == 1
    assert world.client.get("/api/v1/sites", headers=admin).status_code == 401
    assert world.client.get(f"/api/v1/sites/{A}/timetable", headers=admin).status_code == 401


def test_disabled_admin_session_stops_at_once(world: World) -> None:
    cookies = dict(world.session_client.cookies.items())
    client = TestClient(world.app, cookies=cookies)
    assert client.get("/api/v1/sites").status_code == 200
    assert client.get("/", follow_redirects=False).status_code == 200
    with Session(world.app.state.engine) as db:
        disable_user(db, ADMIN_USER)
    assert client.get("/api/v1/sites").status_code == 401
    assert client.get(f"/api/v1/sites/{A}/readiness").status_code == 401
    assert client.get("/", follow_redirects=False).status_code == 303


def test_revoked_share_link_stops_at_once(world: World) -> None:
    path = f"/share/{world.share_token}/report.json"
    assert world.client.get(path).status_code == 200
    with Session(world.app.state.engine) as db:
        revoke_share(db, world.share_id)
    for suffix in ("", "/report.json", "/report.csv"):
        resp = world.client.get(f"/share/{world.share_token}{suffix}")
        assert resp.status_code == 410, suffix
        assert SITE_A not in resp.text

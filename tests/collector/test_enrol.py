"""Enrolment: token → credential; secrets never stored in clear."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from collector.models import Agent, Room
from collector.security import secret_hash
from collector.services.sites import create_site
from tests.collector.conftest import SITE, Enrolled, count, enrol


@pytest.mark.both_backends
def test_enrol_creates_agent_and_room(client: TestClient, site_token: str,
                                      engine: Engine) -> None:
    resp = client.post("/api/v1/enrol",
                       json={"token": site_token, "room": "Lab 3", "agent_version": "0.1.0"})
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"agent_id", "credential", "site", "room", "site_salt"}
    assert (body["site"], body["room"]) == (SITE, "Lab 3")
    assert len(body["credential"]) >= 40

    with Session(engine) as session:
        agent = session.get(Agent, body["agent_id"])
        assert agent is not None
        assert agent.credential_hash == secret_hash(body["credential"])
        assert (agent.agent_version, agent.revoked) == ("0.1.0", False)
        assert [r.name for r in session.exec(select(Room)).all()] == ["Lab 3"]


@pytest.mark.both_backends
def test_every_agent_of_a_site_gets_the_same_random_salt(client: TestClient,
                                                         site_token: str, engine: Engine) -> None:
    salts = {client.post("/api/v1/enrol", json={"token": site_token, "room": room}).json()[
        "site_salt"] for room in ("Lab 3", "Lab 4")}
    assert len(salts) == 1
    (salt,) = salts
    assert len(salt) >= 40  # secrets.token_urlsafe(32)
    with Session(engine) as session:
        other = create_site(session, "other-school")
    other_salt = client.post("/api/v1/enrol", json={"token": other, "room": "R"}).json()[
        "site_salt"]
    assert other_salt != salt


@pytest.mark.both_backends
def test_second_agent_in_same_room_reuses_the_room(client: TestClient, site_token: str,
                                                   engine: Engine) -> None:
    a = enrol(client, site_token, "Lab 3")
    b = enrol(client, site_token, "Lab 3")
    assert a.agent_id != b.agent_id and a.credential != b.credential
    assert count(engine, Room) == 1
    assert count(engine, Agent) == 2


@pytest.mark.both_backends
def test_bad_token_is_401_with_a_clear_message(client: TestClient, site_token: str,
                                               engine: Engine) -> None:
    resp = client.post("/api/v1/enrol", json={"token": "not-the-token", "room": "Lab 3"})
    assert resp.status_code == 401
    assert resp.json()["detail"].startswith("enrolment token not recognised")
    assert "not-the-token" not in resp.text
    assert count(engine, Agent) == 0


@pytest.mark.both_backends
def test_bad_enrol_bodies(client: TestClient, site_token: str, engine: Engine) -> None:
    resp = client.post("/api/v1/enrol", content=b"{nope")
    assert resp.status_code == 400
    assert resp.json()["problems"][0].startswith("body is not valid JSON")
    resp = client.post("/api/v1/enrol", json={"token": site_token, "room": " "})
    assert resp.status_code == 422
    assert resp.json()["problems"] == ["room: must not be empty"]
    resp = client.post("/api/v1/enrol", json={"token": site_token})
    assert resp.status_code == 422
    assert any(p.startswith("room: Field required") for p in resp.json()["problems"])
    assert count(engine, Agent) == 0


def test_token_and_credential_are_not_stored_in_clear(client: TestClient, site_token: str,
                                                      enrolled: Enrolled, tmp_path: Path) -> None:
    client.post("/api/v1/reports", headers=enrolled.headers, content=b"{}")
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("t.db*"))
    assert stored, "the database files should exist"
    for secret in (site_token, enrolled.credential):
        assert secret.encode() not in stored
        assert secret_hash(secret).encode() in stored


def test_secrets_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    import secrets

    from collector.security import new_secret

    drawn = iter(["-looks-like-an-option", "-again", "fine-token"])
    monkeypatch.setattr(secrets, "token_urlsafe", lambda n: next(drawn))
    assert new_secret() == "fine-token"

"""Fleet health: states at their boundaries, warnings naming the value, API, CLI and page."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from agent.wire import ReportBatch, new_report
from collector.cli import main
from collector.models import Agent, Site
from collector.services.enrolment import AgentIdentity
from collector.services.fleet import agent_state, clock_warning, fleet_of, version_key
from collector.services.ingest import store_batch
from collector.settings import Settings
from tests.collector.conftest import SITE, T0, Enrolled, enrol, latency_result

NOW = T0


@pytest.mark.parametrize(("age", "state"), [
    (timedelta(seconds=-30), "live"),  # the agent's clock (or ours) slightly off
    (timedelta(0), "live"),
    (timedelta(seconds=180), "live"),
    (timedelta(seconds=180, microseconds=1), "at-risk"),
    (timedelta(hours=24), "at-risk"),
    (timedelta(hours=24, microseconds=1), "silent"),
    (timedelta(days=400), "silent"),
])
def test_agent_state_boundaries(age: timedelta, state: str) -> None:
    assert agent_state(NOW - age, False, NOW) == state


def test_never_seen_is_silent_and_revoked_wins() -> None:
    assert agent_state(None, False, NOW) == "silent"
    assert agent_state(NOW, True, NOW) == "revoked"
    assert agent_state(None, True, NOW) == "revoked"


@pytest.mark.parametrize(("offset", "warning"), [
    (None, None), (0.0, None), (5.0, None), (-5.0, None),
    (42.0, "clock 42 s behind the collector"),
    (-7.25, "clock 7.2 s ahead of the collector"),
    (5.04, "clock 5.0 s behind the collector"),
    (3 * 3600.0, "clock 3.0 h behind the collector"),
    (-3 * 86400.0, "clock 3.0 days ahead of the collector"),
])
def test_clock_warning(offset: float | None, warning: str | None) -> None:
    assert clock_warning(offset) == warning


def test_version_order() -> None:
    assert version_key("0.10.0") > version_key("0.9.1")  # type: ignore[operator]
    assert version_key("0.2.0rc1") < version_key("0.2.0")  # type: ignore[operator]
    assert version_key("0.2") == version_key("0.2.0") == version_key("v0.2.0")
    assert version_key("") is None and version_key("dev") is None


def _set(engine: Engine, agent_id: str, **values: object) -> None:
    with Session(engine) as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        for key, value in values.items():
            setattr(agent, key, value)
        session.add(agent)
        session.commit()


def _fleet_site(client: TestClient, site_token: str, engine: Engine) -> dict[str, Enrolled]:
    """Four agents in two rooms, one of each state, with every kind of warning."""
    agents = {name: enrol(client, site_token, room) for name, room in (
        ("live", "Room 12"), ("risky", "Room 12"), ("silent", "Lab 2"), ("revoked", "Lab 2"))}
    _set(engine, agents["live"].agent_id, last_seen=NOW - timedelta(seconds=60),
         agent_version="0.3.0", clock_offset_s=42.0)
    _set(engine, agents["risky"].agent_id, last_seen=NOW - timedelta(hours=2),
         agent_version="0.2.9", clock_offset_s=-1.0)
    _set(engine, agents["silent"].agent_id, last_seen=NOW - timedelta(days=3),
         agent_version="0.3.0")
    _set(engine, agents["revoked"].agent_id, last_seen=NOW, agent_version="0.4.0",
         revoked=True, clock_offset_s=100.0)
    with Session(engine) as session:
        risky = session.get(Agent, agents["risky"].agent_id)
        assert risky is not None
        who = AgentIdentity(risky.id, risky.site_id, risky.room_id)
    for dropped, received in ((3, NOW - timedelta(hours=23)), (4, NOW - timedelta(hours=1)),
                              (50, NOW - timedelta(hours=25))):  # the last is too old
        report = new_report(who.agent_id, "0.2.9", [latency_result()], spool_dropped=dropped)
        store_batch(engine, who, ReportBatch([report]), received)
    _set(engine, agents["risky"].agent_id, last_seen=NOW - timedelta(hours=2))
    return agents


@pytest.mark.both_backends
def test_fleet_states_warnings_and_room_counts(client: TestClient, site_token: str,
                                               engine: Engine) -> None:
    agents = _fleet_site(client, site_token, engine)
    with Session(engine) as session:
        fleet = fleet_of(session, session.exec(select(Site).where(Site.name == SITE)).one(),
                         NOW)
    by_id = {a.agent_id: a for a in fleet.agents}
    got = {name: (by_id[e.agent_id].state, by_id[e.agent_id].warnings)
           for name, e in agents.items()}
    assert fleet.newest_version == "0.3.0"  # a revoked agent's version does not count
    assert got == {
        "live": ("live", ("clock 42 s behind the collector",)),
        "risky": ("at-risk", (
            "spool dropped 7 report(s) in the last 24 h (the agent could not upload for a "
            "long time)",
            "version 0.2.9 is older than 0.3.0, the newest in this site")),
        "silent": ("silent", ()),
        "revoked": ("revoked", ()),
    }
    assert [(r.room, r.total, r.counts) for r in fleet.rooms] == [
        ("Lab 2", 2, {"live": 0, "at-risk": 0, "silent": 1, "revoked": 1}),
        ("Room 12", 2, {"live": 1, "at-risk": 1, "silent": 0, "revoked": 0}),
    ]


@pytest.mark.both_backends
def test_fleet_api(client: TestClient, site_token: str, enrolled: Enrolled,
                   engine: Engine,
        admin_headers: dict[str, str]) -> None:
    _set(engine, enrolled.agent_id, clock_offset_s=-6.0)
    resp = client.get(f"/api/v1/sites/{SITE}/fleet", headers=admin_headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    (agent,) = body["agents"]
    assert {k: agent[k] for k in ("agent_id", "room", "agent_version", "state",
                                  "clock_offset_s", "warnings", "spool_dropped_24h")} == {
        "agent_id": enrolled.agent_id, "room": "Room 12", "agent_version": "0.1.0",
        "state": "live", "clock_offset_s": -6.0,
        "warnings": ["clock 6.0 s ahead of the collector"], "spool_dropped_24h": 0}
    assert body["rooms"] == [{"room": "Room 12", "agents": 1, "live": 1, "at-risk": 0,
                              "silent": 0, "revoked": 0}]
    missing = client.get("/api/v1/sites/Nowhere/fleet", headers=admin_headers)
    assert (missing.status_code, missing.json()["detail"]) == (404, "unknown site 'Nowhere'")


def test_site_page_has_a_fleet_health_table(client: TestClient, admin_client: TestClient,
                                            site_token: str, engine: Engine,
        admin_headers: dict[str, str]) -> None:
    _fleet_site(client, site_token, engine)
    page = admin_client.get(f"/sites/{SITE}/report").text
    assert '<h2 id="fleet">Fleet health</h2>' in page
    assert "<caption>Agents per room by state</caption>" in page
    assert "<caption>Each agent: state, last seen, version and warnings</caption>" in page
    assert '<th scope="row">Lab 2</th>' in page
    assert "version 0.2.9 is older than 0.3.0, the newest in this site" in page
    report = client.get(f"/api/v1/sites/{SITE}/readiness", headers=admin_headers).json()
    assert len(report["fleet"]["agents"]) == 4


def test_cli_agents_shows_state_and_warnings(tmp_path: Path, settings: Settings,
                                             client: TestClient, site_token: str,
                                             enrolled: Enrolled, engine: Engine,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _set(engine, enrolled.agent_id, clock_offset_s=42.0)
    db = settings.resolved_database_url()
    assert main(["collector", "agents", "--site", SITE, "--db", db]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["agent", "room", "version", "last", "seen", "state", "warnings"]
    assert row.startswith(enrolled.agent_id)
    assert row.endswith("  live      clock 42 s behind the collector")
    assert main(["collector", "agents", "--site", SITE, "--json", "--db", db]) == 0
    (agent,) = json.loads(capsys.readouterr().out)
    assert (agent["state"], agent["revoked"], agent["warnings"]) == (
        "live", False, ["clock 42 s behind the collector"])

"""Campaigns: create/list/get with named errors, rows in the window, compare over the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from collector.models import Agent, Measurement, ProbeRun, Report, Site
from collector.services.campaigns import (
    CampaignError,
    DuplicateCampaign,
    UnknownCampaign,
    campaign_dict,
    campaign_profiles,
    campaign_rows,
    compare_campaigns,
    create_campaign,
    get_campaign,
    list_campaigns,
)
from collector.services.profiles import add_profile, profile_registry
from collector.services.sites import get_site
from tests.collector.room_rows import new_agent, new_site

SITE = "Test School"
AUTUMN = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)
SPRING = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
PROFILE_ID = "test-latency"
PROFILE_TOML = f"""
id = "{PROFILE_ID}"
version = "2026.1"
title = "Test latency"
[source]
citation = "a test"
confidence = "P"

[[requirements]]
id = "rtt"
title = "TCP connect below 100 ms"
metric = "tcp_connect_ms"
stat = "p50"
statistic = "p50"
op = "<"
threshold = 100
unit = "ms"
severity = "must"
min_samples = 5
targets = ["teams.microsoft.com"]

[[requirements]]
id = "jitter"
title = "Jitter below 30 ms"
metric = "jitter_ms"
stat = "value"
statistic = "p95"
op = "<"
threshold = 30
unit = "ms"
severity = "should"
targets = ["teams.microsoft.com"]
"""


def add_latency(session: Session, agent_id: str, at: datetime,
                values: Iterable[float], step: timedelta = timedelta(minutes=10)) -> None:
    """One report per value: a latency run to teams.microsoft.com with that p50, in P1."""
    agent = session.get(Agent, agent_id)
    assert agent is not None
    for i, value in enumerate(values):
        start = at + i * step
        report = Report(report_id=str(uuid.uuid4()), agent_id=agent_id, created_at=start,
                        received_at=start, schema_version=1, trigger="schedule")
        session.add(report)
        session.flush()
        assert report.id is not None
        run = ProbeRun(report_pk=report.id, probe="latency", target="teams.microsoft.com",
                       status="ok", started_at=start, finished_at=start + timedelta(seconds=2))
        session.add(run)
        session.flush()
        assert run.id is not None
        session.add(Measurement(report_pk=report.id, probe_run_id=run.id, agent_id=agent_id,
                                site_id=agent.site_id, room_id=agent.room_id, time=start,
                                probe="latency", target="teams.microsoft.com",
                                metric="tcp_connect_ms", value=value, unit="ms", method="tcp",
                                stat="p50", samples=5, period="P1", in_lesson=True))
    session.commit()


def school(session: Session, devices: int = 6) -> tuple[Site, list[str]]:
    """The test site with ``devices`` agents and the test supplier profile stored."""
    token = new_site(session, SITE)
    agents = [new_agent(session, token, f"Room {i % 2 + 1}", AUTUMN) for i in range(devices)]
    add_profile(session, PROFILE_TOML, "test-latency.toml")
    return get_site(session, SITE), agents


def two_campaigns(session: Session, site: Site) -> None:
    known = profile_registry(session)
    create_campaign(session, site, "autumn", [PROFILE_ID], AUTUMN, AUTUMN + WEEK, known,
                    "before the new access points")
    create_campaign(session, site, "spring", [PROFILE_ID, "microsoft-teams-media"], SPRING,
                    SPRING + WEEK, known)


def measured(session: Session, agents: list[str]) -> None:
    """Autumn 110..119 ms on every PC, spring 60..69 ms: a clear improvement."""
    for agent in agents:
        add_latency(session, agent, AUTUMN + timedelta(hours=1), range(110, 120))
        add_latency(session, agent, SPRING + timedelta(hours=1), range(60, 70))


@pytest.fixture
def session(engine: Engine) -> Iterable[Session]:
    with Session(engine) as s:
        yield s


# --- the service ----------------------------------------------------------------------------

def test_create_list_get(session: Session) -> None:
    site, _ = school(session)
    two_campaigns(session, site)
    campaigns = list_campaigns(session, site)
    assert [c.name for c in campaigns] == ["autumn", "spring"]
    spring = get_campaign(session, site, "spring")
    assert campaign_profiles(spring) == (PROFILE_ID, "microsoft-teams-media")
    assert campaign_dict(get_campaign(session, site, "autumn"), SITE) == {
        "site": SITE, "name": "autumn", "profiles": [PROFILE_ID],
        "start_at": "2026-10-05T08:00:00+00:00", "end_at": "2026-10-12T08:00:00+00:00",
        "note": "before the new access points",
        "created_at": campaigns[0].created_at.isoformat()}
    with pytest.raises(UnknownCampaign, match=r"^site 'Test School' has no campaign 'summer'; "
                                              r"its campaigns: 'autumn', 'spring'$"):
        get_campaign(session, site, "summer")


@pytest.mark.parametrize(("name", "profiles", "start", "end", "note", "message"), [
    ("x", ["test-latency"], AUTUMN, AUTUMN, "",
     "end 2026-10-05T08:00:00+00:00 is not after start 2026-10-05T08:00:00+00:00"),
    ("x", ["test-latency"], AUTUMN, AUTUMN - WEEK, "",
     "end 2026-09-28T08:00:00+00:00 is not after start 2026-10-05T08:00:00+00:00"),
    ("x", ["test-latency"], AUTUMN.replace(tzinfo=None), AUTUMN + WEEK, "",
     "start 2026-10-05T08:00:00 has no UTC offset"),
    ("x", ["zoom"], AUTUMN, AUTUMN + WEEK, "", "unknown profile 'zoom'; known: "),
    ("x", [], AUTUMN, AUTUMN + WEEK, "", "a campaign needs at least one profile; known: "),
    (" x", ["test-latency"], AUTUMN, AUTUMN + WEEK, "",
     "campaign name ' x' must be non-empty without surrounding spaces"),
    ("", ["test-latency"], AUTUMN, AUTUMN + WEEK, "",
     "campaign name '' must be non-empty without surrounding spaces"),
    ("x" * 101, ["test-latency"], AUTUMN, AUTUMN + WEEK, "",
     "campaign name 'xxxxxxxxxxxxxxxxxxxx'… is 101 characters (max 100)"),
    ("x", ["test-latency"], AUTUMN, AUTUMN + WEEK, "n" * 501,
     "note 'nnnnnnnnnnnnnnnnnnnn'… is 501 characters (max 500)"),
])
def test_create_refusals_name_the_value(session: Session, name: str, profiles: list[str],
                                        start: datetime, end: datetime, note: str,
                                        message: str) -> None:
    site, _ = school(session)
    with pytest.raises(CampaignError) as caught:
        create_campaign(session, site, name, profiles, start, end, profile_registry(session),
                        note)
    assert str(caught.value).startswith(message)
    assert list_campaigns(session, site) == []


def test_profiles_are_stored_once_and_must_fit(session: Session) -> None:
    site, _ = school(session)
    twice = [PROFILE_ID, "microsoft-teams-media", PROFILE_ID]
    campaign = create_campaign(session, site, "x", twice, AUTUMN, AUTUMN + WEEK,
                               profile_registry(session))
    assert campaign_profiles(campaign) == (PROFILE_ID, "microsoft-teams-media")
    long_ids = [f"{i}" * 200 for i in range(1, 6)]
    with pytest.raises(CampaignError, match=r"^5 profiles \(1111.*\) are too many for one "
                                            r"campaign: their ids exceed 1000 characters$"):
        create_campaign(session, site, "y", long_ids, AUTUMN, AUTUMN + WEEK, long_ids)


def test_duplicate_name_is_refused_per_site(session: Session) -> None:
    site, _ = school(session)
    two_campaigns(session, site)
    with pytest.raises(DuplicateCampaign,
                       match="^site 'Test School' already has a campaign 'autumn'$"):
        create_campaign(session, site, "autumn", [PROFILE_ID], SPRING, SPRING + WEEK,
                        [PROFILE_ID])
    new_site(session, "Other School")
    other = get_site(session, "Other School")
    create_campaign(session, other, "autumn", [PROFILE_ID], AUTUMN, AUTUMN + WEEK,
                    [PROFILE_ID])
    assert [c.name for c in list_campaigns(session, other)] == ["autumn"]
    assert len(list_campaigns(session, site)) == 2


def test_campaign_rows_are_the_half_open_window(session: Session) -> None:
    site, (agent, *_) = school(session, devices=1)
    # at start - 1 s, start, end - 1 s, end: the window keeps the middle two
    for at, value in ((AUTUMN - timedelta(seconds=1), 1.0), (AUTUMN, 2.0),
                      (AUTUMN + WEEK - timedelta(seconds=1), 3.0), (AUTUMN + WEEK, 4.0)):
        add_latency(session, agent, at, [value])
    create_campaign(session, site, "autumn", [PROFILE_ID], AUTUMN, AUTUMN + WEEK,
                    [PROFILE_ID])
    campaign = get_campaign(session, site, "autumn")
    rows = campaign_rows(session, campaign)
    assert [(r.time, r.value) for r in rows] == [
        (AUTUMN, 2.0), (AUTUMN + WEEK - timedelta(seconds=1), 3.0)]
    assert campaign_rows(session, campaign, ["jitter_ms"]) == []
    assert [r.value for r in campaign_rows(session, campaign, ["tcp_connect_ms"])] == [2.0, 3.0]


def test_compare_campaigns_finds_the_improvement(session: Session) -> None:
    site, agents = school(session)
    two_campaigns(session, site)
    measured(session, agents)
    comparison = compare_campaigns(session, site, profile_registry(session), PROFILE_ID,
                                   "autumn", "spring", resamples=500)
    rtt, jitter = comparison.changes
    assert (comparison.before, comparison.after, comparison.notes) == ("autumn", "spring", ())
    assert (rtt.verdict, rtt.before.value, rtt.after.value, rtt.change) == (
        "better", 114.5, 64.5, -50.0)
    assert (rtt.before.samples, rtt.before.devices, rtt.resampled) == (60, 6, "devices")
    assert (jitter.verdict, jitter.before.samples) == ("unknown", 0)


def test_compare_campaigns_refusals_and_notes(session: Session) -> None:
    site, agents = school(session)
    two_campaigns(session, site)
    known = profile_registry(session)
    with pytest.raises(CampaignError, match="^campaign 'autumn' does not assess profile "
                                            "'microsoft-teams-media'; its profiles: "
                                            "test-latency$"):
        compare_campaigns(session, site, known, "microsoft-teams-media", "autumn", "spring")
    with pytest.raises(CampaignError, match="^before and after are the same campaign 'autumn'$"):
        compare_campaigns(session, site, known, PROFILE_ID, "autumn", "autumn")
    with pytest.raises(CampaignError, match="^unknown profile 'zoom'; known: "):
        compare_campaigns(session, site, known, "zoom", "autumn", "spring")
    with pytest.raises(UnknownCampaign, match="has no campaign 'summer'"):
        compare_campaigns(session, site, known, PROFILE_ID, "summer", "spring")
    create_campaign(session, site, "autumn-2", [PROFILE_ID], AUTUMN + timedelta(days=3),
                    AUTUMN + 2 * WEEK, known)
    overlap = compare_campaigns(session, site, known, PROFILE_ID, "autumn", "autumn-2",
                                resamples=10)
    assert overlap.notes == ("the windows of 'autumn' and 'autumn-2' overlap: measurements in "
                             "both count on both sides, which hides a change",)
    backwards = compare_campaigns(session, site, known, PROFILE_ID, "spring", "autumn",
                                  resamples=10)
    assert backwards.notes == ("'autumn' (after) is earlier than 'spring' (before)",)


# --- the API --------------------------------------------------------------------------------

BODY = {"name": "autumn", "profiles": [PROFILE_ID], "start_at": "2026-10-05T09:00:00+01:00",
        "end_at": "2026-10-12T09:00:00+01:00", "note": "baseline"}


@pytest.fixture
def stored(session: Session) -> list[str]:
    _, agents = school(session)
    return agents


def test_api_create_and_list(client: TestClient, admin_headers: dict[str, str],
                             stored: list[str]) -> None:
    url = f"/api/v1/sites/{SITE}/campaigns"
    assert client.post(url, json=BODY).status_code == 401
    resp = client.post(url, json=BODY, headers=admin_headers)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert (created["name"], created["profiles"], created["start_at"], created["end_at"],
            created["note"]) == ("autumn", [PROFILE_ID], "2026-10-05T08:00:00+00:00",
                                 "2026-10-12T08:00:00+00:00", "baseline")
    listed = client.get(url, headers=admin_headers)
    assert listed.status_code == 200 and listed.json() == [created]
    again = client.post(url, json=BODY, headers=admin_headers)
    assert again.status_code == 409
    assert again.json()["detail"] == "site 'Test School' already has a campaign 'autumn'"


def test_api_refusals(client: TestClient, admin_headers: dict[str, str],
                      stored: list[str]) -> None:
    url = f"/api/v1/sites/{SITE}/campaigns"
    bad = client.post(url, json={**BODY, "end_at": BODY["start_at"]}, headers=admin_headers)
    assert bad.status_code == 422
    assert bad.json()["detail"] == ("end 2026-10-05T09:00:00+01:00 is not after start "
                                    "2026-10-05T09:00:00+01:00")  # as the client wrote it
    naive = client.post(url, json={**BODY, "start_at": "2026-10-05T09:00:00"},
                        headers=admin_headers)
    assert naive.status_code == 422
    assert naive.json()["detail"].startswith("start 2026-10-05T09:00:00 has no UTC offset")
    unknown = client.post(url, json={**BODY, "profiles": ["zoom"]}, headers=admin_headers)
    assert unknown.status_code == 422
    assert unknown.json()["detail"].startswith("unknown profile 'zoom'; known: ")
    assert client.post(url, json={**BODY, "colour": "red"},
                       headers=admin_headers).status_code == 422
    nowhere = client.post("/api/v1/sites/Nowhere/campaigns", json=BODY, headers=admin_headers)
    assert (nowhere.status_code, nowhere.json()["detail"]) == (404, "unknown site 'Nowhere'")
    assert client.get("/api/v1/sites/Nowhere/campaigns", headers=admin_headers).status_code == 404


def test_api_compare(client: TestClient, engine: Engine, stored: list[str],
        admin_headers: dict[str, str]) -> None:
    with Session(engine) as session:
        site = get_site(session, SITE)
        two_campaigns(session, site)
        measured(session, stored)
    url = f"/api/v1/sites/{SITE}/compare"
    resp = client.get(url, params={"profile": PROFILE_ID, "before": "autumn",
                                   "after": "spring", "resamples": 300}, headers=admin_headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["profile"], body["version"], body["before"], body["after"],
            body["resamples"]) == (PROFILE_ID, "2026.1", "autumn", "spring", 300)
    assert body["summary"] == {"better": 1, "worse": 0, "no significant change": 0,
                               "unknown": 1}
    rtt = body["requirements"][0]
    assert (rtt["id"], rtt["verdict"], rtt["change"]) == ("rtt", "better", -50.0)
    assert rtt["ci"]["low"] <= -50 <= rtt["ci"]["high"] < 0
    for params, status, detail in (
        ({"profile": "zoom", "before": "autumn", "after": "spring"}, 404,
         "unknown profile 'zoom'; known: "),
        ({"profile": PROFILE_ID, "before": "summer", "after": "spring"}, 404,
         "site 'Test School' has no campaign 'summer'"),
        ({"profile": "microsoft-teams-media", "before": "autumn", "after": "spring"}, 422,
         "campaign 'autumn' does not assess profile 'microsoft-teams-media'"),
    ):
        got = client.get(url, params=params, headers=admin_headers)
        assert got.status_code == status
        assert got.json()["detail"].startswith(detail)
    assert client.get(url, params={"profile": PROFILE_ID, "before": "autumn", "after": "spring",
                                   "resamples": 0}, headers=admin_headers).status_code == 422

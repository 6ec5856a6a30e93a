"""Share links: the service (create, list, revoke, resolve), the public pages and their
downloads (only the link's scope; 404 / 410 for bad links), and the admin pages."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from collector.models import ShareLink
from collector.security import secret_hash
from collector.services.campaigns import UnknownCampaign
from collector.services.share import (
    ShareError,
    ShareRefusal,
    ShareScope,
    create_share,
    list_shares,
    resolve,
    revoke_share,
    share_dict,
)
from collector.services.shared_report import pseudonymiser
from collector.services.signing import load_public_pem, verify_document
from collector.services.site_report import UnknownProfile
from collector.services.sites import AgentInfo, UnknownSite, create_site, get_site
from tests.collector.test_campaigns import (
    PROFILE_ID,
    SITE,
    SPRING,
    WEEK,
    measured,
    school,
    two_campaigns,
)

NOW = SPRING + 4 * WEEK
OTHER_SITE = "Other Academy"
OTHER_TITLES = ("Microsoft Teams: calls and meetings", "Google Meet: video meetings")
TITLE = "Test latency"


@pytest.fixture
def agents(engine: Engine) -> list[str]:
    """The test school (6 agents, 20 latency samples each, two campaigns) and another
    site."""
    with Session(engine) as session:
        site, agents = school(session)
        measured(session, agents)
        two_campaigns(session, site)
        create_site(session, OTHER_SITE)
    return agents


@pytest.fixture
def clock(app: FastAPI) -> Iterator[list[datetime]]:
    """The app's clock (``app.state.clock``), set to NOW; tests move it by assigning [0].
    Ask for it before ``admin_client``, which logs in at the clock's time."""
    now = [NOW]
    app.state.clock = lambda: now[0]
    yield now
    del app.state.clock


def make_link(engine: Engine, campaign: str | None = None, days: int = 14,
              profile: str = PROFILE_ID, now: datetime = NOW) -> tuple[int, str]:
    with Session(engine) as session:
        link, token = create_share(session, SITE, profile, campaign, days, "test", now)
        assert link.id is not None
        return link.id, token


def leaks_agent(text: str, agents: list[str]) -> list[str]:
    """The agent ids (or their 8-character prefixes) that appear in ``text``."""
    return [a for a in agents if a[:8] in text]


# --- the service ------------------------------------------------------------------------

def test_token_is_stored_only_as_its_hash(engine: Engine, agents: list[str]) -> None:
    link_id, token = make_link(engine, days=3)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    with Session(engine) as session:
        link = session.get(ShareLink, link_id)
        assert link is not None
        assert link.token_hash == secret_hash(token)
        assert token not in repr(link.model_dump())
        assert (link.profile_id, link.campaign_id, link.created_by) == (PROFILE_ID, None, "test")
        assert link.expires_at == NOW + timedelta(days=3)
        assert share_dict(session, link, NOW) == {
            "id": link_id, "site": SITE, "profile": PROFILE_ID, "campaign": None,
            "created_at": NOW.isoformat(), "expires_at": (NOW + timedelta(days=3)).isoformat(),
            "state": "active", "created_by": "test"}


def test_create_refusals_name_the_value(engine: Engine, agents: list[str]) -> None:
    with Session(engine) as session:
        for days in (0, 91, -1):
            with pytest.raises(ShareError, match=rf"^days {days} is out of range: a link "
                                                 r"lasts 1 to 90 days$"):
                create_share(session, SITE, PROFILE_ID, None, days, "t", NOW)
        with pytest.raises(UnknownSite, match="^unknown site 'Nowhere'$"):
            create_share(session, "Nowhere", PROFILE_ID, None, 1, "t", NOW)
        with pytest.raises(UnknownProfile, match="^unknown profile 'zoom'; known: "):
            create_share(session, SITE, "zoom", None, 1, "t", NOW)
        with pytest.raises(UnknownCampaign, match="^site 'Test School' has no campaign "
                                                  "'summer'"):
            create_share(session, SITE, PROFILE_ID, "summer", 1, "t", NOW)
        with pytest.raises(UnknownProfile, match="^campaign 'autumn' does not judge profile "
                                                 "'microsoft-teams-media'"):
            create_share(session, SITE, "microsoft-teams-media", "autumn", 1, "t", NOW)
        assert list_shares(session, get_site(session, SITE)) == []


def test_resolve_scope_expiry_and_revocation(engine: Engine, agents: list[str]) -> None:
    link_id, token = make_link(engine, campaign="spring", days=1)
    end = NOW + timedelta(days=1)
    with Session(engine) as session:
        assert resolve(session, token, NOW) == ShareScope(link_id, SITE, PROFILE_ID, "spring",
                                                          end)
        assert resolve(session, token, end - timedelta(seconds=1)) == \
            ShareScope(link_id, SITE, PROFILE_ID, "spring", end)
        assert resolve(session, token, end) == ShareRefusal("expired")
        assert resolve(session, token[:-1] + ("A" if token[-1] != "A" else "B"), NOW) == \
            ShareRefusal("unknown")
        assert resolve(session, "", NOW) == ShareRefusal("unknown")
        assert resolve(session, "x" * 5000, NOW) == ShareRefusal("unknown")
        revoke_share(session, link_id)
        assert resolve(session, token, NOW) == ShareRefusal("revoked")
        other = get_site(session, OTHER_SITE)
        with pytest.raises(ShareError, match=f"^no share link {link_id} of site "
                                             f"'{OTHER_SITE}'$"):
            revoke_share(session, link_id, other)
        with pytest.raises(ShareError, match="^no share link 999$"):
            revoke_share(session, 999)
        assert [share_dict(session, x, NOW)["state"]
                for x in list_shares(session, get_site(session, SITE))] == ["revoked"]


def test_pseudonymiser_replaces_whole_and_shortened_ids() -> None:
    a, b = "1d3a1188-d46a-40f6-bb2c-240376cf02c2", "e103be56-fd22-48e1-b43c-86bd5f31dddc"
    agents = [AgentInfo(b, "Room 2", "", NOW, None, False),
              AgentInfo(a, "Room 1", "", NOW, None, False)]
    scrub = pseudonymiser(agents)
    assert scrub(f"worst {a} in Room 1; the worst, {b[:8]} in room 2; worst device "
                 f"{a[:12]}…; {b.upper()}") == \
        "worst #1 in Room 1; the worst, #2 in room 2; worst device #1…; #2"
    assert scrub("room test 0d3a1188 at 09:00; x1d3a1188") == \
        "room test 0d3a1188 at 09:00; x1d3a1188"
    assert pseudonymiser([])(a) == a


# --- the public pages -------------------------------------------------------------------

def test_share_page_shows_only_its_scope(client: TestClient, engine: Engine,
                                         agents: list[str], clock: list[datetime]) -> None:
    _, token = make_link(engine, days=14)
    page = client.get(f"/share/{token}")
    assert page.status_code == 200, page.text
    html = page.text
    assert f"{TITLE}: {SITE}" in html
    assert "FAIL" in html or "PASS" in html or "WARN" in html
    for title in OTHER_TITLES:
        assert title not in html
    assert OTHER_SITE not in html
    assert leaks_agent(html, agents) == []
    assert "Worst devices:\n" in html and "#1 in Room" in html  # numbered, not ids
    assert "Fleet health" not in html and "latest cycle" not in html
    assert sorted(set(re.findall(r'(?:href|action)="([^"]*)"', html))) == [
        "/api/v1/signing-key?format=pem", "/docs", f"/share/{token}/report.csv",
        f"/share/{token}/report.json", "/static/classprobe.css", "/static/favicon.svg"]
    assert "<form" not in html and "Log out" not in html
    assert "Link expires</th><td>" + (NOW + timedelta(days=14)).strftime("%Y-%m-%d %H:%M") \
        + " UTC" in html
    assert "How it was measured" in html and "<td>tcp</td><td>120</td>" in html
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-frame-options"] == "DENY"


def test_share_page_of_a_campaign_counts_only_its_window(
        client: TestClient, engine: Engine, agents: list[str], clock: list[datetime]) -> None:
    _, token = make_link(engine, campaign="spring")
    html = client.get(f"/share/{token}").text
    assert "Campaign</th><td>spring</td>" in html
    assert ("measurements from 2027-03-01 08:00 UTC to 2027-03-08 08:00 UTC (not included) "
            "count") in html
    assert "<td>tcp</td><td>60</td>" in html  # 6 devices × 10 spring samples
    data = client.get(f"/share/{token}/report.json").json()["report"]
    assert data["methods"] == [{"metric": "tcp_connect_ms", "method": "tcp", "samples": 60,
                                "first": "2027-03-01T09:00:00+00:00",
                                "last": "2027-03-01T10:30:00+00:00"}]
    assert data["measurement_window"] == {
        "from": "2027-03-01T08:00:00+00:00", "to": "2027-03-08T08:00:00+00:00",
        "to_included": False, "first_measurement": "2027-03-01T09:00:00+00:00",
        "last_measurement": "2027-03-01T10:30:00+00:00"}
    rtt = data["profile"]["requirements"][0]
    assert (rtt["id"], rtt["status"], rtt["evidence"]["samples"]) == ("rtt", "pass", 60)


def test_share_json_is_signed_and_scoped(client: TestClient, engine: Engine,
                                         agents: list[str], clock: list[datetime]) -> None:
    _, token = make_link(engine)
    resp = client.get(f"/share/{token}/report.json")
    assert resp.status_code == 200
    assert resp.headers["content-disposition"] == \
        f'attachment; filename="classprobe-Test_School-{PROFILE_ID}-report.json"'
    doc = resp.json()
    key = load_public_pem(client.get("/api/v1/signing-key?format=pem").content)
    result = verify_document(doc, key)
    assert (result.valid, result.signed_at) == (True, NOW.isoformat())
    report = doc["report"]
    assert sorted(report) == ["campaign", "expires_at", "generated_at", "kind",
                              "measurement_window", "methods", "notes", "profile",
                              "room_tests", "site", "timetable"]
    assert (report["site"], report["profile"]["profile"]) == (SITE, PROFILE_ID)
    assert leaks_agent(resp.text, agents) == []
    devices = [d["agent_id"] for r in report["profile"]["requirements"]
               for d in r["worst_devices"]]
    assert devices and all(re.fullmatch(r"#[1-6]", d) for d in devices)
    tampered = {**doc, "report": {**report, "site": OTHER_SITE}}
    assert verify_document(tampered, key).reason.startswith("bad signature")


def test_share_csv_is_scoped(client: TestClient, engine: Engine, agents: list[str],
                             clock: list[datetime]) -> None:
    _, token = make_link(engine)
    resp = client.get(f"/share/{token}/report.csv")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert {(r["site"], r["profile"]) for r in rows} == {(SITE, PROFILE_ID)}
    assert [r["requirement"] for r in rows if r["kind"] == "requirement"] == ["rtt", "jitter"]
    assert leaks_agent(resp.text, agents) == []


@pytest.mark.parametrize("path", ["", "/report.json", "/report.csv"])
def test_expired_revoked_and_tampered_links(client: TestClient, engine: Engine,
                                            agents: list[str], clock: list[datetime],
                                            path: str) -> None:
    link_id, token = make_link(engine, days=2)
    assert client.get(f"/share/{token}{path}").status_code == 200
    tampered = token[:10] + ("x" if token[10] != "x" else "y") + token[11:]
    for bad, status in ((tampered, 404), ("nonsense", 404)):
        resp = client.get(f"/share/{bad}{path}")
        assert resp.status_code == status
        assert "This link is not valid" in resp.text
        assert SITE not in resp.text and TITLE not in resp.text
    clock[0] = NOW + timedelta(days=2)
    expired = client.get(f"/share/{token}{path}")
    assert expired.status_code == 410
    assert "This link is no longer valid" in expired.text and SITE not in expired.text
    clock[0] = NOW
    assert client.get(f"/share/{token}{path}").status_code == 200
    with Session(engine) as session:
        revoke_share(session, link_id)
    revoked = client.get(f"/share/{token}{path}")
    assert (revoked.status_code, revoked.text) == (410, expired.text)
    assert revoked.headers["cache-control"] == "no-store"


def test_signing_key_endpoint(client: TestClient) -> None:
    import base64
    import hashlib

    body = client.get("/api/v1/signing-key").json()
    raw = base64.b64decode(body["public_key"])
    assert body["alg"] == "Ed25519" and len(raw) == 32
    assert body["key_id"] == hashlib.sha256(raw).hexdigest()[:16]
    pem = client.get("/api/v1/signing-key", params={"format": "pem"})
    assert pem.text == body["public_key_pem"]
    assert pem.text.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert client.get("/api/v1/signing-key").json() == body  # made once, then kept


# --- the admin pages --------------------------------------------------------------------

def test_admin_share_pages_need_login(client: TestClient, engine: Engine,
                                     agents: list[str]) -> None:
    for path in ("/sites/Test School/share", "/sites/Test School/report.json",
                 "/sites/Test School/report.csv"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303, path
        assert resp.headers["location"].startswith("/login?next=")
    resp = client.post("/sites/Test School/share", follow_redirects=False,
                       data={"profile": PROFILE_ID, "days": "3"})
    assert resp.status_code == 303
    with Session(engine) as session:
        assert session.exec(select(ShareLink)).all() == []


def test_admin_creates_and_revokes_a_link(clock: list[datetime], admin_client: TestClient,
                                          admin_csrf: str, client: TestClient,
                                          agents: list[str]) -> None:
    site_page = admin_client.get("/sites/Test School")  # the form, included by the site page
    assert site_page.status_code == 200
    assert 'action="/sites/Test%20School/share"' in site_page.text
    page = admin_client.get("/sites/Test School/share")
    assert page.status_code == 200
    assert 'action="/sites/Test%20School/share"' in page.text
    assert f'name="csrf_token" value="{admin_csrf}"' in page.text
    assert f'<option value="{PROFILE_ID}">{TITLE} ({PROFILE_ID})</option>' in page.text
    assert "No share links yet." in page.text

    no_csrf = admin_client.post("/sites/Test School/share",
                                data={"profile": PROFILE_ID, "campaign": "", "days": "3"})
    assert no_csrf.status_code == 403
    bad = admin_client.post("/sites/Test School/share",
                            data={"profile": PROFILE_ID, "campaign": "", "days": "91",
                                  "csrf_token": admin_csrf})
    assert bad.status_code == 422
    assert "days 91 is out of range: a link lasts 1 to 90 days" in bad.text
    created = admin_client.post("/sites/Test School/share",
                                data={"profile": PROFILE_ID, "campaign": "spring",
                                      "days": "3", "csrf_token": admin_csrf})
    assert created.status_code == 201, created.text
    found = re.search(r'value="(http://testserver/share/([A-Za-z0-9_-]{43}))"', created.text)
    assert found, created.text
    token = found.group(2)
    assert client.get(f"/share/{token}").status_code == 200

    listing = admin_client.get("/sites/Test School/share").text
    assert token not in listing
    link_id = re.search(r'action="/sites/Test%20School/share/(\d+)/revoke"', listing)
    assert link_id, listing
    no_csrf = admin_client.post(f"/sites/Test School/share/{link_id.group(1)}/revoke")
    assert no_csrf.status_code == 403
    assert client.get(f"/share/{token}").status_code == 200
    revoked = admin_client.post(f"/sites/Test School/share/{link_id.group(1)}/revoke",
                                data={"csrf_token": admin_csrf}, follow_redirects=False)
    assert (revoked.status_code, revoked.headers["location"]) == \
        (303, "/sites/Test%20School/share")
    assert client.get(f"/share/{token}").status_code == 410
    assert admin_client.post("/sites/Other Academy/share/1/revoke",
                             data={"csrf_token": admin_csrf}).status_code == 404


def test_admin_exports(clock: list[datetime], admin_client: TestClient, client: TestClient,
                       agents: list[str]) -> None:
    resp = admin_client.get("/sites/Test School/report.json",
                            params={"profile": PROFILE_ID})
    assert resp.status_code == 200
    key = load_public_pem(client.get("/api/v1/signing-key?format=pem").content)
    doc = resp.json()
    assert verify_document(doc, key).valid
    assert [p["profile"] for p in doc["report"]["profiles"]] == [PROFILE_ID]
    assert sorted(a["agent_id"] for a in doc["report"]["agents"]) == sorted(agents)
    csv_resp = admin_client.get("/sites/Test School/report.csv",
                                params={"campaign": "autumn"})
    assert csv_resp.status_code == 200
    rows = list(csv.DictReader(io.StringIO(csv_resp.text)))
    assert {r["campaign"] for r in rows} == {"autumn"}
    assert admin_client.get("/sites/Nowhere/report.json").status_code == 404

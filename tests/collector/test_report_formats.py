"""The readiness report in every format, through the API and the CLI, with campaigns.

One site with a timetable (P1 is 08:50-09:50 on Monday 23 March 2026, GMT): Room 12 is
slow in lessons (150 ms) and fast in the evening (40 ms); Lab 2 is fast in lessons (40 ms).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from collector.cli import main
from collector.models import utcnow
from collector.services.campaigns import create_campaign
from collector.services.profiles import add_profile, profile_registry
from collector.services.report_formats import CSV_COLUMNS
from collector.services.sites import get_site
from collector.services.timetables import set_timetable
from collector.settings import Settings
from tests.collector.conftest import SITE, Enrolled, batch_body, enrol, latency_result, make_report
from tests.collector.test_ingest_tagging import utc
from tests.collector.test_timetable_api import SCHOOL

TEAMS = "microsoft-teams-media"
LESSON = utc(2026, 3, 23, 9, 0)
EVENING = utc(2026, 3, 23, 18, 0)
URL = f"/api/v1/sites/{SITE}/readiness"
SUPPLIER = """
id = "acme-quiz"
version = "2026.2"
title = "Acme Quiz"
[source]
citation = "Acme Quiz network guide"
confidence = "P"
[[requirements]]
id = "rtt"
title = "RTT below 200 ms in lessons"
metric = "tcp_connect_ms"
stat = "p50"
statistic = "p50"
op = "<"
threshold = 200
unit = "ms"
severity = "must"
window = "in_lesson"
scope = "room"
targets = ["teams.microsoft.com"]
"""


def upload(client: TestClient, who: Enrolled, start: datetime, values: list[float]) -> None:
    reports = [make_report(who.agent_id, [latency_result(p50=v, start=start + timedelta(
        minutes=i))], created_at=start + timedelta(minutes=i)) for i, v in enumerate(values)]
    resp = client.post("/api/v1/reports", headers=who.headers, content=batch_body(*reports))
    assert resp.status_code == 200, resp.text


@pytest.fixture
def site_data(client: TestClient, engine: Engine, site_token: str) -> None:
    with Session(engine) as session:
        set_timetable(session, get_site(session, SITE), SCHOOL, LESSON)
    room12, lab2 = enrol(client, site_token, "Room 12"), enrol(client, site_token, "Lab 2")
    upload(client, room12, LESSON, [150.0] * 5)
    upload(client, room12, EVENING, [40.0] * 5)
    upload(client, lab2, LESSON + timedelta(minutes=10), [40.0] * 5)
    with Session(engine) as session:
        create_campaign(session, get_site(session, SITE), "evening", [TEAMS],
                        EVENING - timedelta(hours=1), EVENING + timedelta(hours=1),
                        profile_registry(session), now=utcnow())


def _admin(client: TestClient) -> dict[str, str]:
    """``Authorization`` with a new admin key of ``client``'s app (read APIs need one)."""
    from collector.services.admin import create_admin_key

    with Session(client.app.state.engine) as session:  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {create_admin_key(session, 'formats')}"}


def _teams(client: TestClient, **params: str) -> dict[str, object]:
    resp = client.get(URL, params={"profile": TEAMS, **params}, headers=_admin(client))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    (teams,) = body["profiles"]
    assert isinstance(teams, dict)
    return teams


@pytest.mark.usefixtures("site_data")
def test_json_has_windows_rooms_and_remediation(client: TestClient) -> None:
    teams = _teams(client)
    assert teams["status"] == "fail"
    rtt = teams["requirements"][0]  # type: ignore[index]
    assert (rtt["id"], rtt["status"], rtt["window"]) == ("rtt", "fail", "in_lesson")
    assert (rtt["evidence"]["value"], rtt["evidence"]["samples"], rtt["evidence"]["rooms"]) == (
        150.0, 10, 2)
    assert rtt["evidence"]["threshold"] == 100.0
    windows = rtt["windows"]
    assert (windows["in_lesson"]["status"], windows["in_lesson"]["evidence"]["value"]) == (
        "fail", 150.0)
    assert (windows["out_of_hours"]["status"], windows["out_of_hours"]["evidence"]["value"]) == (
        "pass", 40.0)
    assert [(r["room"], r["status"], r["value"], r["samples"]) for r in rtt["rooms"]] == [
        ("Lab 2", "pass", 40.0, 5), ("Room 12", "fail", 150.0, 5)]
    assert rtt["worst_rooms"] == ["Room 12", "Lab 2"]
    assert [(p["period"], p["value"]) for p in rtt["worst_periods"]] == [("P1", 150.0)]
    assert rtt["remediation"].startswith(
        "In Room 12, the round-trip time (TCP connect) to teams.microsoft.com, "
        "*.teams.microsoft.com, *.lync.com, *.skype.com is 150 ms (p95); it should be below "
        "100 ms. Across the site, the worst period is period P1 (150 ms).")


@pytest.mark.usefixtures("site_data")
def test_csv_one_row_per_requirement_and_room(client: TestClient,
        admin_headers: dict[str, str]) -> None:
    resp = client.get(URL, params={"profile": TEAMS, "format": "csv"}, headers=admin_headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/csv")
    assert 'filename="classprobe-Test_School-readiness.csv"' in resp.headers[
        "content-disposition"]
    table = list(csv.DictReader(io.StringIO(resp.text)))
    assert list(table[0]) == CSV_COLUMNS
    rtt = [r for r in table if r["requirement"] == "rtt"]
    assert [(r["kind"], r["room"], r["status"], r["value"], r["samples"]) for r in rtt] == [
        ("requirement", "", "fail", "150.0", "10"), ("room", "Lab 2", "pass", "40.0", "5"),
        ("room", "Room 12", "fail", "150.0", "5")]
    head = rtt[0]
    assert (head["in_lesson_status"], head["in_lesson_value"], head["out_of_hours_status"],
            head["out_of_hours_value"]) == ("fail", "150.0", "pass", "40.0")
    assert (head["profile"], head["profile_version"], head["profile_status"]) == (
        TEAMS, "2026.1", "fail")
    assert head["remediation"].startswith("In Room 12, the round-trip time")
    assert [r["kind"] for r in table].count("requirement") == 3


@pytest.mark.usefixtures("site_data")
def test_text_and_html_show_windows_side_by_side(client: TestClient,
        admin_headers: dict[str, str]) -> None:
    text = client.get(URL, params={"profile": TEAMS, "format": "text"}, headers=admin_headers).text
    assert ("            in lessons:   FAIL    150 ms (p95, site; 10 samples from 2 "
            "device(s))") in text
    assert "            out of hours: PASS    40 ms (p95, site; 5 samples from 1 device(s))" \
        in text
    assert "            rooms: Lab 2 PASS 40 ms (5); Room 12 FAIL 150 ms (5)" in text
    assert "            what to do: In Room 12, the round-trip time" in text
    page = client.get(URL, params={"profile": TEAMS, "format": "html"}, headers=admin_headers)
    assert page.headers["content-type"].startswith("text/html")
    assert '<th scope="col">In lessons</th><th scope="col">Out of hours</th>' in page.text
    assert "<strong>What to do:</strong> In Room 12, the round-trip time" in page.text


@pytest.mark.usefixtures("site_data")
def test_campaign_limits_rows_to_its_window_and_profiles(client: TestClient,
        admin_headers: dict[str, str]) -> None:
    resp = client.get(URL, params={"campaign": "evening"}, headers=admin_headers)
    assert resp.status_code == 200
    body = resp.json()
    assert body["campaign"]["name"] == "evening"
    assert [p["profile"] for p in body["profiles"]] == [TEAMS]
    rtt = body["profiles"][0]["requirements"][0]
    assert rtt["status"] == "unknown"  # no lesson inside the campaign's window
    assert rtt["windows"]["out_of_hours"]["evidence"]["samples"] == 5
    assert rtt["reason"].startswith("no measurements of tcp_connect_ms (p50) to "
                                    "teams.microsoft.com, *.teams.microsoft.com, *.lync.com, "
                                    "*.skype.com in lessons yet; at least 5 needed")
    resp = client.get(URL, params={"campaign": "spring"}, headers=admin_headers)
    assert (resp.status_code, resp.json()["detail"]) == (
        404, f"site {SITE!r} has no campaign 'spring'; its campaigns: 'evening'")
    resp = client.get(URL, params={"campaign": "evening", "profile": "google-meet"},
                      headers=admin_headers)
    assert (resp.status_code, resp.json()["detail"]) == (
        404, f"campaign 'evening' does not judge profile 'google-meet'; its profiles: {TEAMS}")
    resp = client.get(URL, params={"profile": "zoom"}, headers=admin_headers)
    assert resp.status_code == 404
    assert resp.json()["detail"].startswith("unknown profile 'zoom'; known: ")
    assert client.get(URL, params={"format": "xml"}, headers=admin_headers).status_code == 422


@pytest.mark.usefixtures("site_data")
def test_supplier_profiles_are_reported(client: TestClient, engine: Engine,
        admin_headers: dict[str, str]) -> None:
    with Session(engine) as session:
        add_profile(session, SUPPLIER, "acme.toml")
    acme = _teams(client, profile="acme-quiz")
    assert (acme["profile"], acme["version"], acme["status"]) == ("acme-quiz", "2026.2", "pass")
    every = client.get(URL, headers=admin_headers).json()["profiles"]
    assert "acme-quiz" in [p["profile"] for p in every]


def cli(capsys: pytest.CaptureFixture[str], settings: Settings, *argv: str) -> tuple[int, str,
                                                                                      str]:
    code = main(["report", "--site", SITE, "--db", settings.database_url or "", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.usefixtures("site_data")
def test_cli_report_formats_and_campaign(capsys: pytest.CaptureFixture[str],
                                        settings: Settings) -> None:
    code, out, _ = cli(capsys, settings, "--profile", TEAMS, "--format", "csv")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert [(r["requirement"], r["room"], r["status"]) for r in table][:3] == [
        ("rtt", "", "fail"), ("rtt", "Lab 2", "pass"), ("rtt", "Room 12", "fail")]
    code, out, _ = cli(capsys, settings, "--campaign", "evening", "--format", "json")
    assert code == 0
    body = json.loads(out)
    assert (body["campaign"]["name"], body["profiles"][0]["status"]) == ("evening", "unknown")
    code, out, _ = cli(capsys, settings, "--profile", TEAMS)
    assert code == 0
    assert "Microsoft Teams: calls and meetings (client to Microsoft edge): FAIL" in out
    assert "profile microsoft-teams-media version 2026.1" in out
    code, _, err = cli(capsys, settings, "--campaign", "spring")
    assert (code, err) == (1, f"classprobe report: site {SITE!r} has no campaign 'spring'; "
                              "its campaigns: 'evening'\n")
    code, _, err = cli(capsys, settings, "--profile", "zoom")
    assert code == 1 and err.startswith("classprobe report: unknown profile 'zoom'; known: ")

"""The admin web UI: pages render the real data, unknown things get 404 pages, nothing is
loaded from elsewhere, the static files are served, and the markup is accessible."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.wire import Measurement, ProbeResult
from collector.models import Measurement as MeasurementRow
from collector.services.campaigns import compare_campaigns, create_campaign
from collector.services.profiles import profile_registry
from collector.services.room_tests import create_room_test
from collector.services.site_report import report_metrics
from collector.services.sites import get_site
from collector.services.timetables import set_timetable
from tests.collector.conftest import SITE, batch_body, enrol, make_report
from tests.collector.room_rows import Run, add_job_report
from tests.collector.test_timeline import DAY, TIMETABLE, at, latency, wifi

STATIC = Path(__file__).resolve().parents[2] / "collector" / "static"
BASE = "/sites/Test%20School"
ROOM = f"{BASE}/rooms/Room%2012"


@dataclass(frozen=True)
class School:
    a: str
    b: str
    c: str


def _post(client: TestClient, headers: dict[str, str], results: list[ProbeResult]) -> None:
    reports = [make_report(headers["agent"], [r], r.started_at) for r in results]
    resp = client.post("/api/v1/reports", content=batch_body(*reports),
                       headers={"Authorization": headers["Authorization"]})
    assert resp.status_code == 200, resp.text


def _teams(start: datetime, p50: float) -> ProbeResult:
    result = latency(start, p50)
    result.target = "teams.microsoft.com"
    return result


@pytest.fixture
def school(client: TestClient, site_token: str, engine: Engine) -> School:
    """Room 12: agents a and b, five lesson-time latency runs each in P1 (slow) and P2
    (fast); a also has Wi-Fi load, a download test and its inventory. Room 7: agent c,
    one slow run. Campaigns "Before" (P1) and "After" (P2) on the Teams profile."""
    with Session(engine) as session:
        site = get_site(session, SITE)
        set_timetable(session, site, TIMETABLE, DAY)
        known = list(profile_registry(session))
        for name, start in (("Before", at(8, 0)), ("After", at(10, 0))):
            create_campaign(session, site, name, ["microsoft-teams-media"], start,
                            start + timedelta(hours=2), known, now=DAY)
    a, b = enrol(client, site_token), enrol(client, site_token)
    c = enrol(client, site_token, room="Room 7")
    inventory = ProbeResult(probe="device", status="ok", started_at=at(9, 0),
                            finished_at=at(9, 0, 5), measurements=[
                                Measurement("cpu_model", "text", "platform", text="Test CPU 3000"),
                                Measurement("ram_total_gb", "GB", "psutil", value=7.8)])
    download = ProbeResult(probe="bandwidth", status="ok", target="http://127.0.0.1:9/dl",
                           started_at=at(9, 5), finished_at=at(9, 5, 10), measurements=[
                               Measurement("download_mbps", "Mbps", "http-get, 4 streams",
                                           value=87.5)])
    _post(client, {"agent": a.agent_id, **a.headers},
          [_teams(at(9, 1 + 10 * i), v) for i, v in enumerate([100, 110, 120, 130, 140])]
          + [_teams(at(10, 1 + 10 * i), v) for i, v in enumerate([20, 25, 30, 35, 40])]
          + [wifi(at(9, 1), 62.5, 31.0), download, inventory])
    _post(client, {"agent": b.agent_id, **b.headers},
          [_teams(at(9, 2 + 10 * i), v) for i, v in enumerate([40, 50, 60, 70, 80])]
          + [_teams(at(10, 2 + 10 * i), v) for i, v in enumerate([22, 27, 32, 37, 42])])
    _post(client, {"agent": c.agent_id, **c.headers}, [_teams(at(9, 3), 300)])
    return School(a.agent_id, b.agent_id, c.agent_id)


PAGES = ["/", "/fleet", "/profiles", BASE, ROOM, f"{BASE}/report", f"{BASE}/compare"]


def test_every_page_needs_a_login(client: TestClient, school: School) -> None:
    for path in [*PAGES, f"{ROOM}/devices/{school.a}"]:
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303, path
        assert resp.headers["location"].startswith("/login"), path


def test_index_and_fleet_pages(admin_client: TestClient, school: School) -> None:
    index = admin_client.get("/").text
    assert f'<th scope="row"><a href="{BASE}">Test School</a></th>' in index
    assert '<td class="num">2</td><td class="num">3</td>' in index  # 2 rooms, 3 agents
    fleet = admin_client.get("/fleet").text
    assert f'<a href="{ROOM}/devices/{school.a}"><code>{school.a}</code></a>' in fleet
    assert '<th scope="row"><a href="/sites/Test%20School/rooms/Room%207">Room 7</a></th>' \
        in fleet


def test_site_page(admin_client: TestClient, school: School) -> None:
    resp = admin_client.get(BASE)
    assert resp.status_code == 200
    page = resp.text
    assert "<h1>Test School</h1>" in page
    assert "2 room(s), 3 agent(s): 3 live, 0 at risk, 0 silent, 0 revoked." in page
    # Teams: rtt fails (Room 7's single 300 ms run counts on the site), jitter and loss
    # were never measured: the verdict is FAIL; one of three requirements fails
    teams = page.split('#profile-microsoft-teams-media">')[1].split("</tr>")[0]
    assert 'status-fail">FAIL</span>' in teams
    assert re.sub(r"\s+", "", teams).endswith(
        '<tdclass="num">0</td><tdclass="num">0</td><tdclass="num">1</td>'
        '<tdclass="num">2</td>')
    # each room judged alone: Room 12 fails Teams' rtt requirement; Room 7 has too few runs
    rooms = page.split("<caption>Each room's status per profile</caption>")[1]
    teams_row = rooms.split("Microsoft Teams: calls and meetings")[1].split("</tr>")[0]
    assert teams_row.count('status-fail">FAIL</span>') == 1  # Room 12
    assert teams_row.count('status-unknown">UNKNOWN</span>') == 1  # Room 7: one run
    assert f'<a href="{ROOM}">Room 12</a>' in rooms
    assert "<th scope=\"row\">Before</th><td>2025-03-03 08:00 UTC</td>" \
           "<td>2025-03-03 10:00 UTC</td>" in page
    assert f'<a href="{BASE}/compare">Compare two of them</a>' in page
    assert "No room tests yet." in page
    if (STATIC.parent / "templates" / "share_form.html").exists():
        assert "Share a read-only report with a supplier" in page
        assert f'action="{BASE}/share"' in page and 'name="csrf_token"' in page


def test_room_page_timeline_verdicts_devices(admin_client: TestClient, school: School) -> None:
    resp = admin_client.get(ROOM, params={"date": "2025-03-03"})
    assert resp.status_code == 200
    page = resp.text
    assert '<h2 id="day">School day: 2025-03-03 (Monday)</h2>' in page
    assert "Shaded: lessons\n(P1 09:00–10:00, P2 10:00–11:00)" in page
    assert (f'data-timeline="/api/v1{ROOM}/timeline?date=2025-03-03"') in page
    assert '<script src="/static/vendor/uplot/uPlot.iife.min.js" defer></script>' in page
    # the text summary of the latency chart, worked out by hand from the 5-minute bins:
    # room medians 70 80 90 100 110 (P1) and 21 26 31 36 41 (P2)
    assert ("Latency: TCP connect time, median of each run (all targets): 10 five-minute "
            "bins with data from 09:00 to 10:40, 20 samples from 2 device(s); room median "
            "typically 55.5 ms, highest 110 ms at 09:40 (P1), lowest 21 ms at 10:00 (P2)."
            ) in page
    assert "Download speed: 1 five-minute bins with data from 09:05 to 09:05" in page
    assert "typically 62.5 %, highest 62.5 % at 09:00 (P1)" in page
    latency_table = page.split("<caption>Latency in Room 12 on 2025-03-03")[1]
    latency_table = latency_table.split("</table>")[0]
    assert '<th scope="row">09:40</th><td>P1</td>\n<td class="num">110</td>' in latency_table
    assert '<th scope="row">10:00</th><td>P2</td>\n<td class="num">21</td>' in latency_table
    # the room's own verdict: p95 of its 20 lesson-time runs is 130.5 ms
    assert '<details id="room-profile-microsoft-teams-media" open>' in page
    teams = page.split('<details id="room-profile-microsoft-teams-media" open>')[1]
    teams = " ".join(teams.split("</details>")[0].split())
    assert ("<strong>130.5 ms</strong> (p95, site): 20 samples from 2 device(s) in 1 room(s), "
            "2025-03-03 09:01 UTC to 2025-03-03 10:42 UTC.") in teams
    assert "Worst periods: P1 135.5 ms; P2 41.1 ms" in teams
    assert ("<strong>What to do:</strong> In Room 12, the round-trip time (TCP connect) to "
            "teams.microsoft.com") in teams
    assert "The Wi-Fi access point in Room 12 advertises 62 % channel use with 31 stations" \
        in teams
    assert f'<a href="{ROOM}/devices/{school.b}"><code>{school.b}</code></a>' in page
    assert f"devices/{school.c}" not in page  # Room 7's agent is not listed
    assert "No complete room test yet" in page


def test_room_page_default_day_and_navigation(admin_client: TestClient, school: School) -> None:
    page = admin_client.get(ROOM).text  # the day of the room's newest measurement
    assert 'id="date" name="date" value="2025-03-03"' in page
    assert f'<a href="{ROOM}?date=2025-03-02">Previous day' in page
    assert f'<a href="{ROOM}?date=2025-03-04">Next day' in page
    other = admin_client.get(ROOM, params={"date": "2025-03-08"}).text  # a Saturday
    assert "No school on this day by the timetable." in other
    assert "Latency: TCP connect time, median of each run (all targets): nothing measured " \
           "in Room 12 on 2025-03-08." in other


def test_capacity_from_a_room_test(admin_client: TestClient, school: School,
                                   engine: Engine) -> None:
    """A complete room test of Room 12 (a 30 + b 10 Mbps at once) shows on both pages."""
    made = datetime.now(UTC) - timedelta(minutes=10)
    start = made + timedelta(minutes=1)
    with Session(engine) as session:
        job_id = create_room_test(session, get_site(session, SITE), "Room 12", start, 20.0,
                                  ["download"], 4, None, None, made).id
        for agent, mbps in ((school.a, 30.0), (school.b, 10.0)):
            add_job_report(session, agent, job_id, [Run("download", mbps)], start)
    stamp = start.strftime("%Y-%m-%d %H:%M UTC")
    room = " ".join(admin_client.get(ROOM).text.split())
    assert (f"Latest complete room test, {stamp}, 2 device(s) at once: download "
            "<strong>40 Mbps</strong>, upload not measured in total.") in room
    site = admin_client.get(BASE).text
    assert (f'<tr><th scope="row">Room 12</th>\n    <td>40 Mbps</td>\n    <td>not measured</td>'
            f'\n    <td>2</td><td>{stamp}</td><td><code>{job_id[:8]}</code></td></tr>') in site
    tests = site.split("<caption>The newest coordinated room tests")[1].split("</table>")[0]
    assert "<td>complete</td>" in tests and "40 Mbps" in tests and "2 of 2" in tests


def test_device_page(admin_client: TestClient, school: School) -> None:
    resp = admin_client.get(f"{ROOM}/devices/{school.a}")
    assert resp.status_code == 200
    page = resp.text
    assert f"<h1>Device <code>{school.a}</code></h1>" in page
    assert '<tr><th scope="row">State</th><td><strong>live</strong></td></tr>' in page
    inventory = page.split('<h2 id="inventory">')[1].split("</table>")[0]
    assert "The device probe's newest run, 2025-03-03 09:00 UTC: ok" in inventory
    assert "<td>Test CPU 3000</td>" in inventory and "<td>7.8 GB</td>" in inventory
    assert "<td>psutil</td>" in inventory
    results = page.split('<h2 id="results">')[1]
    # the newest latency run (10:41, 40 ms) and the download test, with their methods
    assert "<td>2025-03-03 10:41 UTC</td>" in results and "40 ms" in results
    assert "87.5 Mbps" in results and "[http-get, 4 streams]" in results


def test_report_states_methods_and_window(admin_client: TestClient, school: School,
                                          engine: Engine) -> None:
    resp = admin_client.get(f"{BASE}/report")
    assert resp.status_code == 200
    page = resp.text
    assert "<strong>Measurement window:</strong>\nmeasurements from 2025-03-03 09:00 UTC " \
           "to 2025-03-03 10:42 UTC." in page
    assert "Periods: P1 09:00-10:00; P2 10:00-11:00." in page
    assert "timetable in\nEurope/London, school days mon, tue, wed, thu, fri" in page
    with Session(engine) as session:
        judged = report_metrics(profile_registry(session).values())
        methods = set(session.exec(select(MeasurementRow.method).where(
            col(MeasurementRow.metric).in_(judged))).all())
    assert methods == {"tcp", "iw, value/255", "iw", "http-get, 4 streams", "psutil"}
    table = page.split("<caption>Methods used")[1].split("</table>")[0]
    for method in methods:
        assert f"<td>{method}</td>" in table
    assert ("<tr><td><code>tcp_connect_ms</code></td><td>tcp</td><td class=\"num\">42</td>"
            "\n    <td>2025-03-03 09:01 UTC</td><td>2025-03-03 10:42 UTC</td></tr>") in table
    # printable: self-contained styles with the print rules, no script at all
    assert "@media print" in page and "<script" not in page
    assert "'unsafe-inline'" in resp.headers["content-security-policy"]
    assert "script-src" not in resp.headers["content-security-policy"]


def test_compare_page(admin_client: TestClient, school: School, engine: Engine) -> None:
    params = {"profile": "microsoft-teams-media", "before": "Before", "after": "After"}
    resp = admin_client.get(f"{BASE}/compare", params=params)
    assert resp.status_code == 200
    page = resp.text
    with Session(engine) as session:
        expected = compare_campaigns(session, get_site(session, SITE),
                                     profile_registry(session), "microsoft-teams-media",
                                     "Before", "After")
    rtt = expected.changes[0]
    # before: P1's ten runs and Room 7's 300 ms: p95 = 220; after: P2's ten: p95 = 41.1
    assert (rtt.before.value, rtt.after.value) == (220.0, pytest.approx(41.1))
    row = page.split('<th scope="row">Round-trip time to the Microsoft edge below 100 ms')[1]
    row = row.split("</tr>")[0]
    assert ">220<br>" in row and ">41.1<br>" in row
    assert "11 samples, 3 devices" in row and "10 samples, 2 devices" in row
    assert f"<strong>{rtt.verdict}</strong>" in row
    assert '<option value="After" selected>' in page


@pytest.mark.parametrize(("params", "status", "message"), [
    ({"profile": "microsoft-teams-media", "before": "Before", "after": "Before"}, 422,
     "before and after are the same campaign &#39;Before&#39;"),
    ({"profile": "microsoft-teams-media", "before": "Before", "after": "Later"}, 404,
     "site &#39;Test School&#39; has no campaign &#39;Later&#39;"),
    ({"profile": "microsoft-teams-media"}, 422, "choose a profile and both campaigns"),
])
def test_compare_page_errors(admin_client: TestClient, school: School, params: dict[str, str],
                             status: int, message: str) -> None:
    resp = admin_client.get(f"{BASE}/compare", params=params)
    assert resp.status_code == status
    assert message in resp.text and 'role="alert"' in resp.text


@pytest.mark.parametrize(("path", "message"), [
    ("/sites/Nowhere", "There is no site named “Nowhere”."),
    ("/sites/Nowhere/report", "There is no site named “Nowhere”."),
    ("/sites/Nowhere/compare", "There is no site named “Nowhere”."),
    ("/sites/Nowhere/rooms/Room%2012", "There is no site named “Nowhere”."),
    (f"{BASE}/rooms/Attic", "Site “Test School” has no room named “Attic”."),
    (f"{BASE}/rooms/Attic/devices/x", "There is no device “x” in site “Test School”."),
    (f"{ROOM}/devices/not-an-agent", "There is no device “not-an-agent” in room “Room 12”."),
])
def test_unknown_things_get_a_404_page(admin_client: TestClient, school: School, path: str,
                                       message: str) -> None:
    resp = admin_client.get(path)
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("text/html")
    assert message in resp.text and "<h1>" in resp.text


def test_a_device_of_another_room_is_not_found(admin_client: TestClient,
                                               school: School) -> None:
    resp = admin_client.get(f"{ROOM}/devices/{school.c}")
    assert resp.status_code == 404 and "in room “Room 12”" in resp.text


def test_bad_date_gets_a_page(admin_client: TestClient, school: School) -> None:
    resp = admin_client.get(ROOM, params={"date": "31/12/2025"})
    assert resp.status_code == 422
    assert "date &#39;31/12/2025&#39; is not a date like 2026-09-14" in resp.text


def test_static_files_are_served_with_their_types(client: TestClient) -> None:
    cases = {"/static/vendor/uplot/uPlot.iife.min.js": "javascript",
             "/static/vendor/uplot/uPlot.min.css": "text/css",
             "/static/classprobe.js": "javascript", "/static/classprobe.css": "text/css",
             "/static/favicon.svg": "image/svg+xml"}
    for path, kind in cases.items():
        resp = client.get(path)  # public: no login
        assert resp.status_code == 200, path
        assert kind in resp.headers["content-type"], (path, resp.headers["content-type"])
        assert resp.content == (STATIC / path.removeprefix("/static/")).read_bytes()
    assert client.get("/static/vendor/uplot/uPlot.iife.min.js").text.startswith(
        "/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
    assert "MIT License" in client.get("/static/vendor/uplot/LICENSE").text
    assert client.get("/static/nothing.js").status_code == 404


class Markup(HTMLParser):
    """What the accessibility and no-CDN checks look at in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables = 0
        self.captions = 0
        self.labels: set[str] = set()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        self.tables += tag == "table"
        self.captions += tag == "caption"
        if tag == "label" and found.get("for"):
            self.labels.add(str(found["for"]))
        if found.get("id"):
            self.ids.add(str(found["id"]))


def _markup(html: str) -> Markup:
    parsed = Markup()
    parsed.feed(html)
    return parsed


def test_pages_load_nothing_from_elsewhere_and_are_accessible(admin_client: TestClient,
                                                              school: School) -> None:
    for path in [*PAGES, f"{ROOM}/devices/{school.a}", "/sites/Nowhere"]:
        resp = admin_client.get(path)
        page = _markup(resp.text)
        assert resp.text.startswith("<!doctype html>\n<html lang=\"en\">"), path
        for tag, attrs in page.tags:
            url = attrs.get("src") if tag in ("script", "img") else \
                attrs.get("href") if tag == "link" else None
            if url is not None:  # every script, style and icon comes from this collector
                assert url.startswith("/") and not url.startswith("//"), (path, url)
            if tag == "script":  # no inline script: the CSP allows only 'self'
                assert attrs.get("src"), path
            assert "style" not in attrs, (path, tag)  # no inline styles either
            if tag == "th":
                assert attrs.get("scope") in ("col", "row"), (path, attrs)
            if tag in ("input", "select", "textarea") and attrs.get("type") != "hidden":
                assert attrs.get("id") in page.labels, (path, attrs)
        assert page.tables == page.captions, path
        assert ("a", {"class": "skip", "href": "#main"}) in page.tags and "main" in page.ids
        csp = resp.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "http" not in csp, path
        if path != f"{BASE}/report":
            assert "script-src 'self'" in csp and "unsafe" not in csp, path
        assert resp.headers["cache-control"] == "no-store"


def test_stylesheet_states_contrast_and_has_print_rules() -> None:
    css = (STATIC / "classprobe.css").read_text()
    assert "17.2:1" in css and "10.0:1" in css  # the ratios chosen, stated
    print_rules = css.split("@media print")[1]
    assert ".site-header, .skip, .breadcrumbs, form" in print_rules
    assert "display: none" in print_rules and "thead { display: table-header-group; }" \
        in print_rules
    assert ":focus-visible { outline: 4px solid" in css


def test_timeline_times_match_the_site_day(school: School,
                                           admin_client: TestClient) -> None:
    """The room page's chart data is the timeline JSON of the same day (read, as the
    page's own script does, with the admin's session cookie)."""
    body = admin_client.get(f"/api/v1{ROOM}/timeline", params={"date": "2025-03-03"}).json()
    latency_series = next(s for s in body["series"] if s["key"] == "latency")
    nine = int(datetime(2025, 3, 3, 9, tzinfo=UTC).timestamp())
    assert latency_series["room"][0] == [nine, 70.0]
    assert latency_series["targets"] == ["teams.microsoft.com"]

"""Every admin page renders the school's real numbers in a real browser, with no console
error or warning and no failed request; the room's charts draw; the keyboard works.

The numbers are the ones ``tests/collector/test_ui_pages.py`` works out by hand for the
same school day (see :mod:`tests.browser.school`); the room test's time is the run's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import WIDER_THAN_SCREEN, Browse
from tests.browser.school import ADMIN_USER, OTHER_SITE, PROFILE_TITLE, SITE, School

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

DAY = "?date=2025-03-03"
LATENCY_SUMMARY = (
    "Latency: TCP connect time, median of each run (all targets): 10 five-minute bins with "
    "data from 09:00 to 10:40, 20 samples from 2 device(s); room median typically 55.5 ms, "
    "highest 110 ms at 09:40 (P1), lowest 21 ms at 10:00 (P2).")


def expected(s: School) -> dict[str, tuple[str, str, list[str]]]:
    """Each admin page: its address, its ``<h1>`` and texts its ``<main>`` must show (table
    cells are tab-separated in a browser's text)."""
    ran = s.room_test_ran.strftime("%Y-%m-%d %H:%M UTC")
    site, room, a, b = s.site_path(), s.room_path(), s.agents["A"], s.agents["B"]
    return {
        "sites": ("/", "Sites", [f"{SITE}\t2\t3\t", f"{OTHER_SITE}\t1\t1\t"]),  # rooms, agents
        "fleet": ("/fleet", "Fleet health", [
            "Room 12\t2\t2\t0\t0\t0", "Room 7\t1\t1\t0\t0\t0", "Lab 1\t1\t1\t0\t0\t0",
            *(f"{s.agents[x]}\tlive\t" for x in "ABCD")]),
        "profiles": ("/profiles", "Requirement profiles", [
            *s.profile_titles.values(),
            "Round-trip time to the Microsoft edge below 100 ms\ttcp_connect_ms (p50)"]),
        "site": (site, SITE, [
            "2 room(s), 3 agent(s): 3 live, 0 at risk, 0 silent, 0 revoked.",
            f"{PROFILE_TITLE}\tFAIL\t0\t0\t1\t2",
            f"Room 12\t40 Mbps\tnot measured\t2\t{ran}\t{s.room_test_id[:8]}",
            "Before\t2025-03-03 08:00 UTC\t2025-03-03 10:00 UTC\tmicrosoft-teams-media",
            "After\t2025-03-03 10:00 UTC\t2025-03-03 12:00 UTC\tmicrosoft-teams-media",
            f"{ran}\tRoom 12\tcomplete\t40 Mbps\t–\t2 of 2"]),
        "room": (room + DAY, "Room 12 (Hillside School)", [
            "School day: 2025-03-03 (Monday)",
            "Shaded: lessons (P1 09:00–10:00, P2 10:00–11:00).",
            LATENCY_SUMMARY,
            "Download speed: 1 five-minute bins with data from 09:05 to 09:05, 1 samples from "
            "1 device(s); room median typically 87.5 Mbps",
            "typically 62.5 %, highest 62.5 % at 09:00 (P1)",
            "130.5 ms (p95, site): 20 samples from 2 device(s) in 1 room(s), 2025-03-03 09:01 "
            "UTC to 2025-03-03 10:42 UTC.",
            "Worst periods: P1 135.5 ms; P2 41.1 ms",
            f"Latest complete room test, {ran}, 2 device(s) at once: download 40 Mbps, upload "
            "not measured in total.",
            f"{a}\tlive\t", f"{b}\tlive\t"]),
        "device": (f"{room}/devices/{a}", f"Device {a}", [
            "cpu_model\tTest CPU 3000\tplatform", "ram_total_gb\t7.8 GB\tpsutil",
            "The device probe's newest run, 2025-03-03 09:00 UTC: ok",
            "download_mbps 87.5 Mbps [http-get, 4 streams]",
            "tcp_connect_ms (p50) 40 ms [tcp]; tcp_connect_ms (max) 120 ms [tcp]",
            "download_mbps 30 Mbps [http_get_4_streams]"]),
        "report": (f"{site}/report", f"Readiness report: {SITE}", [
            f"Measurement window: measurements from 2025-03-03 09:00 UTC to {ran}.",
            "Periods: P1 09:00-10:00; P2 10:00-11:00.",
            "tcp_connect_ms\ttcp\t42\t2025-03-03 09:01 UTC\t2025-03-03 10:42 UTC",
            "download_mbps\thttp-get, 4 streams\t1\t2025-03-03 09:05 UTC\t2025-03-03 09:05 UTC",
            f"download_mbps\thttp_get_4_streams\t2\t{ran}\t{ran}"]),
        "compare": (f"{site}/compare?profile=microsoft-teams-media&before=Before&after=After",
                    f"Compare campaigns: {SITE}", [
                        "Round-trip time to the Microsoft edge below 100 ms\tp95 (ms, lower is "
                        "better)\t220\n11 samples, 3 devices\t41.1\n10 samples, 2 devices\t"
                        "-178.9\t",
                        "p95 220 → 41.1 ms: -178.9 ms"]),
    }


PAGES = ["sites", "fleet", "profiles", "site", "room", "device", "report", "compare"]


def settle(page: Page) -> None:
    """Wait until a room page has fetched its chart data and drawn (other pages have no
    script that loads anything)."""
    if page.locator("[data-timeline]").count():
        page.wait_for_load_state("networkidle")
        page.locator(".chart canvas").first.wait_for()


@pytest.mark.parametrize("name", PAGES)
def test_page_shows_the_real_data_cleanly(browse: Browse, school: School, name: str) -> None:
    path, heading, shows = expected(school)[name]
    page, guard = browse.page()
    response = page.goto(path)
    assert response is not None and response.status == 200
    settle(page)
    assert page.get_by_role("heading", level=1).inner_text() == heading
    shown = page.inner_text("main")
    missing = [text for text in shows if text not in shown]
    assert missing == [], f"the {name} page lacks {missing}"
    if name == "report":  # a document on its own: no script, styles inline
        assert page.locator("script").count() == 0
    else:
        assert page.get_by_role("button", name="Log out").is_visible()
        assert f"Logged in as {ADMIN_USER}" in page.inner_text("header")
    browse.shot(page, name)
    guard.assert_clean()

    phone, phone_guard = browse.page(phone=True)
    phone.goto(path)
    settle(phone)
    assert shows[0] in phone.inner_text("main")
    # nothing wider than the phone: wide tables scroll inside their own region
    assert phone.evaluate(WIDER_THAN_SCREEN) == [], f"the {name} page is wider than a phone"
    browse.shot(phone, name)
    phone_guard.assert_clean()


def test_room_timeline_charts_draw_with_their_data_tables(browse: Browse,
                                                          school: School) -> None:
    page, guard = browse.page()
    page.goto(school.room_path() + DAY)
    for chart in ("latency", "bandwidth", "wifi"):
        canvas = page.locator(f".chart[data-chart={chart}] canvas")
        canvas.wait_for()
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 200, (chart, box)
        painted = canvas.evaluate("""c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) { n++; } }
            return n; }""")
        assert painted > 1000, (chart, painted)  # lines, shading and axes, not a blank canvas
    legend = page.locator(".chart[data-chart=latency] .u-legend").inner_text()
    assert "Latency: TCP connect time, median of each run (all targets) (room median)" \
        in legend

    # the accessible alternative: the numbers behind the latency chart, in a table
    table = page.get_by_role("table", name="Latency in Room 12 on 2025-03-03")
    assert not table.is_visible()  # closed <details> until asked for
    page.get_by_text("Latency: the numbers (10 five-minute bins)").click()
    assert table.is_visible()
    rows = table.locator("tbody tr").all_inner_texts()
    assert len(rows) == 10
    assert rows[0] == "09:00\tP1\t70" and "09:40\tP1\t110" in rows \
        and "10:00\tP2\t21" in rows, rows
    guard.assert_clean()


def test_keyboard_reaches_the_skip_link_first_then_the_controls(browse: Browse,
                                                                school: School) -> None:
    page, guard = browse.page()
    page.goto(school.room_path() + DAY)
    page.wait_for_load_state("networkidle")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("el => el === document.activeElement")
    box = skip.bounding_box()  # shown when focused, inside the window
    assert box is not None and box["y"] >= 0 and box["x"] >= 0 and box["width"] > 0

    reached: list[str] = []
    for _ in range(20):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("""() => {
            const el = document.activeElement;
            return (el.getAttribute('aria-label') || el.id || el.innerText || '').trim()
                .split('\\n')[0]; }"""))
        if reached[-1] == "Next day":
            break
    assert reached[:5] == ["classprobe", "Sites", "Fleet", "Profiles", "Log out"], reached
    for control in ("date", "Show this day", "Previous day", "Next day"):
        assert control in reached, (control, reached)

    # the skip link, used: focus jumps to the page's main content
    page.goto(school.room_path() + DAY)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    guard.assert_clean()


def test_the_api_docs_linked_from_every_page_load_nothing_from_elsewhere(
        browse: Browse, school: School) -> None:
    page, guard = browse.page()
    page.goto("/")
    page.get_by_role("link", name="API").click()
    page.wait_for_url(f"{school.url}/docs")
    offhost, guard.offhost = guard.offhost, []  # aborted by the guard: nothing left
    assert offhost == []

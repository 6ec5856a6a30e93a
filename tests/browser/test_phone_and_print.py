"""A teacher flags a problem from a phone; the readiness report prints to a PDF that states
its methods and its measurement window."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.browser.conftest import PHONE, Browse
from tests.browser.school import ROOM, SITE, School, run_cli

pytestmark = pytest.mark.slow

NOTE = "the projector lost the video"
TAP_PX = 44  # the smallest comfortable touch target (WCAG 2.5.5, Apple's guidance)


def test_flag_page_works_on_a_phone(browse: Browse, school: School) -> None:
    page, guard = browse.page(logged_in=False, phone=True)
    response = page.goto(school.flag_url)
    assert response is not None and response.status == 200
    assert page.get_by_role("heading", level=1).inner_text() \
        == f"Report a problem in {ROOM} ({SITE})"
    # made for the phone: nothing wider than the screen, a big button, a labelled box
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    button = page.get_by_role("button", name="Report a problem now")
    box = button.bounding_box()
    assert box is not None and box["height"] >= TAP_PX and box["width"] >= PHONE["width"] / 2
    assert box["y"] + box["height"] <= PHONE["height"]  # no scrolling to reach it
    note = page.get_by_label("What went wrong? (optional)")
    browse.shot(page, "flag")

    note.tap()
    note.fill(NOTE)
    button.tap()
    page.get_by_role("heading", level=1, name="Thank you").wait_for()
    message = page.get_by_role("status").inner_text()
    browse.shot(page, "flag-sent")
    guard.assert_clean()

    flags = json.loads(run_cli("collector", "flags", "--site", SITE, "--json", "--db", school.db))
    assert [(f["room"], f["source"], f["note"]) for f in flags] == [(ROOM, "web", NOTE)]
    at = datetime.fromisoformat(flags[0]["created_at"]).astimezone(ZoneInfo("Europe/London"))
    assert message == (f"The problem in {ROOM} is recorded ({at:%H:%M %Z}). The computers in "
                       "the room are measuring the network now.")
    assert flags[0]["burst_job_id"]  # the room's computers were asked to measure


def test_report_prints_with_its_methods_and_window(browse: Browse, school: School) -> None:
    page, guard = browse.page()
    page.goto(f"{school.site_path()}/report")
    page.emulate_media(media="print")
    pdf = browse.artefact("report.pdf")
    page.pdf(path=str(pdf), format="A4", print_background=True)
    guard.assert_clean()
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 20_000, len(data)
    if shutil.which("pdftotext") is None:
        pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
        assert pages >= 3, pages  # every profile is in it; the text is checked with poppler
        return
    layout = subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", str(pdf), "-"],
                            check=True, capture_output=True, text=True, timeout=60).stdout
    text = " ".join(layout.split())  # a table row is one line of the layout
    ran = school.room_test_ran.strftime("%Y-%m-%d %H:%M UTC")
    for stated in (f"Readiness report: {SITE}",
                   f"Measurement window: measurements from 2025-03-03 09:00 UTC to {ran}.",
                   "Periods: P1 09:00-10:00; P2 10:00-11:00.",
                   "Methods used",
                   "tcp_connect_ms tcp 42 2025-03-03 09:01 UTC 2025-03-03 10:42 UTC",
                   "download_mbps http-get, 4 streams 1",
                   "bss_channel_utilisation_pct iw, value/255 1"):
        assert stated in text, stated
    assert "Log out" not in text and "Skip to content" not in text  # screen-only parts

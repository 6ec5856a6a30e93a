"""A supplier's share link, opened by a browser with no login: it shows its site and profile
and nothing else (no other profile, no other site, no device id); a revoked, expired or
tampered link shows only that it is not valid; the signed JSON downloads and
``classprobe report verify`` accepts it (and refuses a changed copy)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import WIDER_THAN_SCREEN, Browse
from tests.browser.school import LAB, OTHER_SITE, PROFILE, PROFILE_TITLE, SITE, School
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.slow


def secrets_of(school: School) -> list[str]:
    """What a share link must never show: another site, another profile's title, any agent
    id (whole or cut to the 8 characters the verdict texts quote) or credential."""
    others = [title for pid, title in school.profile_titles.items() if pid != PROFILE]
    ids = list(school.agents.values())
    return [OTHER_SITE, LAB, *others, *ids, *(i[:8] for i in ids),
            *school.credentials.values()]


def leaks(text: str, school: School) -> list[str]:
    return [s for s in secrets_of(school) if s in text]


def test_share_link_shows_only_its_scope(browse: Browse, school: School) -> None:
    page, guard = browse.page(logged_in=False)
    response = page.goto(school.share_url)
    assert response is not None and response.status == 200
    assert page.get_by_role("heading", level=1).inner_text() == f"{PROFILE_TITLE}: {SITE} FAIL"
    shown = page.inner_text("main")
    for text in ("Site\tHillside School",
                 "140 ms (21 samples)",  # p95 of all 21 lesson-time runs, Room 7's too
                 "Rooms: Room 12 FAIL 130.5 ms (20 samples); Room 7 UNKNOWN 300 ms (1 samples)",
                 "Worst devices: #3 in Room 7 300 ms (fails); #1 in Room 12 135.5 ms (fails); "
                 "#2 in Room 12 75.5 ms",
                 "Room 12\t40 Mbps\tnot measured\t2\t",
                 "tcp_connect_ms\ttcp\t42\t2025-03-03 09:01 UTC\t2025-03-03 10:42 UTC"):
        assert text in shown, text
    assert leaks(page.content(), school) == []
    assert page.get_by_role("button", name="Log out").count() == 0
    token = urlsplit(school.share_url).path
    hrefs = page.locator("a[href]").evaluate_all("els => els.map(a => a.getAttribute('href'))")
    # its own downloads, the public key, and the footer's API docs (every page has it)
    assert sorted(hrefs) == ["/api/v1/signing-key?format=pem", "/docs",
                             f"{token}/report.csv", f"{token}/report.json"]
    browse.shot(page, "share")
    guard.assert_clean()
    phone, phone_guard = browse.page(logged_in=False, phone=True)
    phone.goto(school.share_url)
    assert phone.evaluate(WIDER_THAN_SCREEN) == []  # wide tables scroll in their region
    browse.shot(phone, "share")
    phone_guard.assert_clean()


def verify(report: Path, key: Path) -> subprocess.Popen[str]:
    """``classprobe report verify REPORT --public-key KEY`` as a person runs it."""
    return subprocess.Popen([sys.executable, "-m", "classprobe.cli", "report", "verify",
                             str(report), "--public-key", str(key)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_signed_json_downloads_and_verifies(browse: Browse, school: School,
                                            tmp_path: Path) -> None:
    page, guard = browse.page(logged_in=False)
    page.goto(school.share_url)
    with page.expect_download() as json_download:
        page.get_by_role("link", name="This report as JSON, signed by the collector").click()
    saved = browse.artefact("share-report.json")
    json_download.value.save_as(saved)
    assert json_download.value.suggested_filename \
        == "classprobe-Hillside_School-microsoft-teams-media-report.json"
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="This report as CSV").click()
    csv_text = Path(csv_download.value.path()).read_text(encoding="utf-8")
    guard.assert_clean()

    text = saved.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert (doc["report"]["site"], doc["report"]["profile"]["profile"]) == (SITE, PROFILE)
    assert doc["report"]["profile"]["status"] == "fail"
    assert doc["signed"]["alg"] == "Ed25519"
    assert leaks(text, school) == [] and leaks(csv_text, school) == []
    assert SITE in csv_text

    key = tmp_path / "collector.pem"
    key.write_text(school.public_key_pem, encoding="utf-8")
    changed = tmp_path / "changed.json"
    doc["report"]["profile"]["status"] = "pass"  # a supplier "improves" the verdict
    changed.write_text(json.dumps(doc), encoding="utf-8")
    good, bad = verify(saved, key), verify(changed, key)  # both at once: two interpreters
    out, err = good.communicate(timeout=60)
    assert good.returncode == 0, err
    assert out.startswith(f"valid, signed by key {doc['signed']['key_id']} at "), out
    out, err = bad.communicate(timeout=60)
    assert bad.returncode == 1 and "bad signature" in err, (out, err)


def dead_link_console(status: int) -> Callable[[str], bool]:
    """Chromium's console line about a page answered with ``status``: expected here."""
    reason = {404: "Not Found", 410: "Gone"}[status]
    return lambda line: line.startswith(
        f"error: Failed to load resource: the server responded with a status of {status} "
        f"({reason})")


@pytest.mark.parametrize(("which", "status", "title"), [
    ("revoked", 410, "This link is no longer valid"),
    ("expired", 410, "This link is no longer valid"),
    ("tampered", 404, "This link is not valid"),
    ("revoked-json", 410, "This link is no longer valid"),
])
def test_dead_links_show_only_that_they_are_not_valid(browse: Browse, school: School, which: str,
                                                      status: int, title: str) -> None:
    url = {"revoked": school.revoked_share_url, "expired": school.expired_share_url,
           "tampered": school.share_url[:-1] + ("A" if school.share_url[-1] != "A" else "B"),
           "revoked-json": school.revoked_share_url + "/report.json"}[which]
    page, guard = browse.page(logged_in=False)
    response = page.goto(url)
    assert response is not None and response.status == status
    assert page.get_by_role("heading", level=1).inner_text() == title
    html = page.content()
    assert SITE not in html and PROFILE_TITLE not in html and leaks(html, school) == []
    browse.shot(page, f"share-{which}")
    guard.assert_clean(allow_console=dead_link_console(status))
    assert len(guard.console) == 1, guard.console  # the one line about the page's status


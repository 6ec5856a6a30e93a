"""The README's run command: `classprobe demo` leaves a report page to look at."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, closed_port_url, free_port

pytestmark = pytest.mark.slow


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def open_after_login(url: str, username: str, password: str) -> str:
    """The page at ``url``, through the collector's login form as a browser does it."""
    parts = urllib.parse.urlsplit(url)
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(url, timeout=10) as login_page:  # redirected to /login?next=...
        assert login_page.url.startswith(f"{parts.scheme}://{parts.netloc}/login?next=")
        form = login_page.read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, form
    fields = {"username": username, "password": password, "csrf_token": token.group(1),
              "next": parts.path}
    with browser.open(f"{parts.scheme}://{parts.netloc}/login",
                      urllib.parse.urlencode(fields).encode(), timeout=10) as page:
        assert page.url == url  # back on the report after logging in
        return str(page.read().decode())


def test_demo_serves_a_report_page_until_interrupted(tmp_path: Path) -> None:
    port = free_port()
    # a local endpoint that refuses connections stands in for the supplier: tests never
    # resolve real names (the demo's default is Microsoft Teams)
    supplier = closed_port_url()
    demo = subprocess.Popen(
        [sys.executable, "-m", "classprobe.cli", "demo", "--data-dir", str(tmp_path),
         "--port", str(port), "--cycles", "1", "--target", supplier],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "collector running" in line:
                break
        output = "".join(lines)
        assert "collector running" in output, output
        url = next(w for line in lines if line.startswith("report page:")
                   for w in line.split() if w.startswith("http"))
        assert url == f"http://127.0.0.1:{port}/sites/demo-school/report"
        login = dict(re.findall(r"^  (log in as|password): +(\S+)", output, re.MULTILINE))
        assert login["log in as"] == "demo-admin" and len(login["password"]) >= 12, output
        with pytest.raises(urllib.error.HTTPError) as refused:  # not logged in
            urllib.request.build_opener(NoRedirect).open(url, timeout=10)
        assert refused.value.code == 303
        assert refused.value.headers["Location"] == (
            "/login?next=%2Fsites%2Fdemo-school%2Freport")
        html = open_after_login(url, login["log in as"], login["password"])
        assert "Microsoft Teams" in html and "Room 12" in html
        # the unreachable supplier shows as a failure with its reason, not as a number
        assert "refused" in output.lower()
        assert "UNKNOWN" in output
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(timeout=30)
    assert demo.returncode == 0
    with pytest.raises(OSError):  # the demo took its collector down with it
        urllib.request.urlopen(f"http://127.0.0.1:{port}/speed/ping", timeout=2)

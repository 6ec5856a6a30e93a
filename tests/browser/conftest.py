"""Playwright driving Debian's Chromium (never a downloaded browser) against a real collector.

- Chromium: ``CLASSPROBE_CHROMIUM``, else ``chromium`` on PATH (Debian's package, which
  ``.ci/run`` installs); the tests skip, saying why, without it or without Playwright.
- The collector: one uvicorn process on 127.0.0.1 with a temporary SQLite database, filled
  by :func:`tests.browser.school.build_school` through the CLI and the API.
- The browser reaches nothing but 127.0.0.1: every request to another host is aborted by
  the context's route and recorded (:class:`Guard`; each test's teardown asserts there was
  none), and below the pages Chromium gets a proxy on a closed loopback port and a host
  resolver that resolves nothing, so even its own background requests cannot leave.
- Screenshots and the PDF go to ``CLASSPROBE_ARTEFACTS`` or ``tests/browser/artefacts/``;
  the path is printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from tests.browser.school import ADMIN_PASSWORD, ADMIN_USER, School, build_school
from tests.e2e.conftest import Collector, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Route

HERE = Path(__file__).resolve().parent
ALLOWED_HOST = "127.0.0.1"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WIDER_THAN_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width) return [];
  return [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > width + 1 && !e.closest(".scroll"))
    .filter(e => ![...e.children].some(c => c.getBoundingClientRect().right > width + 1))
    .map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : "") + ": "
              + (e.textContent || "").trim().slice(0, 60));
}"""
"""The innermost elements sticking out of a phone's screen (outside a scrolling region)."""
WRITTEN: list[Path] = []  # artefacts written by this run, for the terminal summary


def chromium_path() -> str | None:
    """Debian's Chromium: ``CLASSPROBE_CHROMIUM`` when set, else ``chromium`` on PATH."""
    configured = os.environ.get("CLASSPROBE_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def artefacts_dir() -> Path:
    return Path(os.environ.get("CLASSPROBE_ARTEFACTS") or HERE / "artefacts")


@dataclass
class Guard:
    """What the pages of one browser context did that they should not have."""

    offhost: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != ALLOWED_HOST:
            self.offhost.append(url)
            route.abort("blockedbyclient")
            return
        route.continue_()

    def watch(self, page: Page) -> None:
        def on_console(msg: ConsoleMessage) -> None:
            if msg.type in ("error", "warning"):
                self.console.append(f"{msg.type}: {msg.text} ({msg.location.get('url')})")

        def on_failed(request: Request) -> None:
            # ERR_ABORTED: cancelled by the page leaving (a quick click while the browser
            # still fetched the favicon); a missing or broken resource fails otherwise
            # (a status >= 400 is a console error; a refused connection its own code)
            if request.failure != "net::ERR_ABORTED":
                self.failed.append(f"{request.url}: {request.failure}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("requestfailed", on_failed)
        page.on("request", lambda request: self.requested.append(request.url))

    def assert_clean(self, allow_console: Callable[[str], bool] = lambda _: False) -> None:
        """No console error or warning (except those ``allow_console`` accepts), no page
        error, no failed request, nothing off this machine."""
        console = [c for c in self.console if not allow_console(c)]
        assert (console, self.errors, self.failed, self.offhost) == ([], [], [], []), \
            f"console {console}, page errors {self.errors}, failed requests {self.failed}, " \
            f"off-host requests {self.offhost}"
        hosts = {urlsplit(u).hostname for u in self.requested if u.startswith(("http", "ws"))}
        assert hosts <= {ALLOWED_HOST}, hosts


@dataclass
class Browse:
    """Opens pages in fresh contexts (logged in or not, desktop or phone) that can reach
    only the collector; writes screenshots."""

    browser: Browser
    school: School
    admin_state: dict[str, Any]
    artefacts: Path
    contexts: list[tuple[BrowserContext, Guard]] = field(default_factory=list)

    def page(self, *, logged_in: bool = True, phone: bool = False) -> tuple[Page, Guard]:
        options: dict[str, Any] = {"base_url": self.school.url, "viewport": PHONE if phone
                                   else DESKTOP, "accept_downloads": True,
                                   "service_workers": "block"}
        if phone:
            options.update(is_mobile=True, has_touch=True, device_scale_factor=1)
        if logged_in:
            options["storage_state"] = self.admin_state
        context = self.browser.new_context(**options)
        guard = Guard()
        context.route("**/*", guard.route)
        self.contexts.append((context, guard))
        page = context.new_page()
        guard.watch(page)
        return page, guard

    def __repr__(self) -> str:
        return f"Browse({self.school.url}, {len(self.contexts)} context(s))"

    def artefact(self, name: str) -> Path:
        """A file of the artefacts directory, listed at the end of the run."""
        path = self.artefacts / name
        WRITTEN.append(path)
        return path

    def shot(self, page: Page, name: str) -> Path:
        """A full-page PNG ``name``-desktop|phone.png in the artefacts directory."""
        size = "phone" if (page.viewport_size or DESKTOP)["width"] < 600 else "desktop"
        path = self.artefact(f"{name}-{size}.png")
        page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        offhost = [u for _c, g in self.contexts for u in g.offhost]
        for context, _guard in self.contexts:
            context.close()
        assert offhost == [], f"the browser tried to reach other hosts: {offhost}"


@pytest.fixture(scope="session")
def chromium() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[dev]')")
    path = chromium_path()
    if path is None:
        where = os.environ.get("CLASSPROBE_CHROMIUM")
        pytest.skip(f"CLASSPROBE_CHROMIUM={where!r} is not an executable" if where else
                    "Chromium not found: install Debian's chromium (apt-get install chromium) "
                    "or set CLASSPROBE_CHROMIUM")
    return path


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    args = ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            "--disable-dev-shm-usage"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium's sandbox refuses to run as root
    closed = f"http://{ALLOWED_HOST}:{free_port()}"  # nothing listens there
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=args,
                                     proxy={"server": closed, "bypass": ALLOWED_HOST})
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def school(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[School]:
    work = tmp_path_factory.mktemp("browser")
    collector = Collector(data_dir=work / "collector")
    collector.data_dir.mkdir()
    collector.start()
    try:
        yield build_school(collector, work)
    finally:
        collector.stop()


@pytest.fixture(scope="session")
def artefacts() -> Path:
    path = artefacts_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def admin_state(browser: Browser, school: School) -> dict[str, Any]:
    """The cookies of an admin logged in through the login form, for other contexts."""
    context = browser.new_context(base_url=school.url)
    guard = Guard()
    context.route("**/*", guard.route)
    try:
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("User name").fill(ADMIN_USER)
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{school.url}/")
        state: dict[str, Any] = context.storage_state()  # type: ignore[assignment]
    finally:
        context.close()
    assert guard.offhost == []
    return state


@pytest.fixture
def browse(browser: Browser, school: School, artefacts: Path,
           admin_state: dict[str, Any]) -> Iterator[Browse]:
    """Pages for one test, logged in as the admin or not; every context is closed after
    it, and none may have tried to reach another host. The agents poll first, so the
    pages find them live."""
    school.poll()
    session = Browse(browser, school, admin_state, artefacts)
    try:
        yield session
    finally:
        session.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if WRITTEN:
        terminalreporter.write_line(
            f"browser tests: {len(WRITTEN)} artefact(s) to look at (screenshots, the printed "
            f"report, the signed JSON) in {WRITTEN[0].parent}")

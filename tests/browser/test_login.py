"""The login protects the admin pages: logged out, every page sends the browser to /login
(and back after it); a wrong password is said so; logging out ends the session."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import Browse
from tests.browser.school import ADMIN_PASSWORD, ADMIN_USER, SITE, School

pytestmark = pytest.mark.slow

WRONG = "The user name or password is not right."


def admin_paths(school: School) -> list[str]:
    room = school.room_path()
    return ["/", "/fleet", "/profiles", school.site_path(), room, f"{room}?date=2025-03-03",
            f"{room}/devices/{school.agents['A']}", f"{school.site_path()}/report",
            f"{school.site_path()}/compare", f"{school.site_path()}/share"]


def on_login_page(url: str, school: School) -> str:
    """Where a login page at ``url`` goes after the login (fails when it is not the login
    page); without ``next``, to ``/``."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{school.url}/login", url
    [target] = parse_qs(parts.query).get("next", ["/"])
    return target


def test_every_admin_page_sends_a_stranger_to_the_login(browse: Browse, school: School) -> None:
    page, guard = browse.page(logged_in=False)
    for path in admin_paths(school):
        page.goto(path)
        assert on_login_page(page.url, school) == path
        assert page.get_by_role("heading", level=1).inner_text() == "Log in"
        assert "Hillside" not in page.inner_text("body")  # nothing of the page shows
    assert page.get_by_role("button", name="Log out").count() == 0
    browse.shot(page, "login")
    guard.assert_clean()
    phone, phone_guard = browse.page(logged_in=False, phone=True)
    phone.goto("/login")
    browse.shot(phone, "login")
    phone_guard.assert_clean()


def test_wrong_password_then_the_right_one_then_log_out(browse: Browse, school: School) -> None:
    page, guard = browse.page(logged_in=False)
    page.goto(school.site_path())
    page.get_by_label("User name").fill(ADMIN_USER)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Log in").click()

    alert = page.get_by_role("alert")
    assert alert.inner_text() == WRONG and alert.is_visible()
    assert page.url == f"{school.url}/login"  # the form posted here, still going to:
    assert page.locator("input[name=next]").input_value() == school.site_path()
    assert page.get_by_label("User name").input_value() == ADMIN_USER  # kept for a retry
    assert page.get_by_label("Password").input_value() == ""
    assert page.get_by_label("Password").get_attribute("aria-invalid") == "true"
    browse.shot(page, "login-wrong-password")

    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{school.url}{school.site_path()}")  # back where the visit began
    assert page.get_by_role("heading", level=1).inner_text() == SITE
    assert f"Logged in as {ADMIN_USER}" in page.inner_text("header")
    copied = page.context.cookies()

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{school.url}/login")
    page.goto(school.site_path())
    assert on_login_page(page.url, school) == school.site_path()
    guard.assert_clean()

    # a copy of the cookie taken before the logout no longer opens anything
    other, other_guard = browse.page(logged_in=False)
    other.context.add_cookies(copied)  # type: ignore[arg-type]
    other.goto("/fleet")
    assert on_login_page(other.url, school) == "/fleet"
    other_guard.assert_clean()

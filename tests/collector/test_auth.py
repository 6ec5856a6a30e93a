"""Admin login for the HTML pages: the form, sessions, CSRF, logout, rate limit."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import Engine
from sqlmodel import Session, select

from collector.app import create_app
from collector.models import AdminLogin, utcnow
from collector.render import environment
from collector.services.users import disable_user, set_password
from collector.settings import Settings
from collector.web_auth import COOKIE, AdminFormDep, AdminSession, safe_next
from tests.collector.conftest import ADMIN_PASSWORD, ADMIN_USER, csrf_token, login

WRONG = "The user name or password is not right."


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def is_login_redirect(client: TestClient, path: str = "/") -> bool:
    resp = client.get(path, follow_redirects=False)
    return resp.status_code == 303 and resp.headers["location"].startswith("/login")


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(app: FastAPI) -> Clock:
    app.state.clock = clock = Clock()
    return clock


@pytest.fixture
def anon(app: FastAPI, client: TestClient) -> Iterator[TestClient]:
    """A fresh logged-out browser on the started app (``client`` starts it)."""
    browser = TestClient(app)
    yield browser
    browser.close()


@pytest.mark.parametrize(("path", "location"), [
    ("/", "/login"),
    ("/sites/Test%20School/report?x=1&y=2",
     "/login?next=%2Fsites%2FTest%2520School%2Freport%3Fx%3D1%26y%3D2"),
    ("/sites/Nowhere/report", "/login?next=%2Fsites%2FNowhere%2Freport"),
])
def test_pages_redirect_to_login(client: TestClient, admin_user: str, path: str,
                                 location: str) -> None:
    resp = client.get(path, follow_redirects=False)
    assert (resp.status_code, resp.headers["location"]) == (303, location)


def test_login_form_is_accessible_and_sets_a_cookie(client: TestClient) -> None:
    resp = client.get("/login", params={"next": "/sites/A/report"})
    assert resp.status_code == 200
    page = resp.text
    assert '<label for="username">User name</label>' in page
    assert '<label for="password">Password</label>' in page
    assert 'id="username" name="username"' in page and 'autocomplete="username"' in page
    assert 'type="password" id="password" name="password"' in page
    assert 'autocomplete="current-password"' in page
    assert '<input type="hidden" name="next" value="/sites/A/report">' in page
    assert resp.headers["cache-control"] == "no-store"
    cookie = resp.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for part in ("HttpOnly", "Max-Age=43200", "Path=/", "SameSite=lax"):
        assert part in cookie
    assert "Secure" not in cookie  # plain http here
    assert form_token(page) == csrf_token(client)


def test_cookie_is_secure_over_https(app: FastAPI, client: TestClient) -> None:
    https = TestClient(app, base_url="https://testserver")
    assert "; Secure" in https.get("/login").headers["set-cookie"]


def test_login_then_back_to_the_page(client: TestClient, admin_user: str) -> None:
    client.get("/login")
    visitor_token = csrf_token(client)
    resp = login(client, next_path="/sites/Test%20School/report?x=1")
    assert (resp.status_code, resp.headers["location"]) == (
        303, "/sites/Test%20School/report?x=1")
    assert csrf_token(client) != visitor_token  # a new CSRF token on login
    page = client.get("/")
    assert (page.status_code, page.url.path) == (200, "/")
    assert "<h1>Sites</h1>" in page.text
    again = client.get("/login", params={"next": "/sites/X/report"}, follow_redirects=False)
    assert (again.status_code, again.headers["location"]) == (303, "/sites/X/report")


def test_wrong_password_and_unknown_user_look_the_same(client: TestClient,
                                                       admin_user: str) -> None:
    pages = []
    for name, password in ((ADMIN_USER, "not the password"), ("nobody", ADMIN_PASSWORD)):
        resp = login(client, name, password)
        assert resp.status_code == 200
        assert f'<p class="login-error" id="login-error" role="alert">{WRONG}</p>' in resp.text
        assert 'aria-invalid="true"' in resp.text
        pages.append(resp.text.replace(name, "NAME").replace(form_token(resp.text), "T"))
        assert is_login_redirect(client)
    assert pages[0] == pages[1]


@pytest.mark.parametrize("target", [
    "//evil.example/x", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
    "http:/evil.example", "javascript:alert(1)", "evil.example", "", "/\t/evil.example",
    "///evil.example",
])
def test_next_never_leaves_the_site(client: TestClient, admin_user: str,
                                    target: str) -> None:
    form = client.get("/login", params={"next": target}).text
    assert '<input type="hidden" name="next" value="/">' in form
    resp = login(client, next_path=target)
    assert (resp.status_code, resp.headers["location"]) == (303, "/")


@pytest.mark.parametrize(("value", "expected"), [
    ("/sites/A%20B/report?x=1#top", "/sites/A%20B/report?x=1#top"),
    ("/", "/"), (None, "/"), ("//x", "/"), ("/a\\b", "/"), ("/a\x00", "/"),
    ("https://x/", "/"),
])
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_login_without_or_with_a_wrong_csrf_token_is_refused(app: FastAPI, client: TestClient,
                                                             admin_user: str) -> None:
    token = form_token(client.get("/login").text)
    for sent in ({}, {"csrf_token": "forged"}, {"csrf_token": token + "x"}):
        resp = client.post("/login", data={"username": ADMIN_USER, "password": ADMIN_PASSWORD,
                                           **sent}, follow_redirects=False)
        assert resp.status_code == 403
        assert "The login form had expired. Please try again." in resp.text
        assert is_login_redirect(client)
    other_browser = TestClient(app)  # its own cookie: another browser's token fails
    other_browser.get("/login")
    resp = other_browser.post("/login", data={"username": ADMIN_USER,
                                              "password": ADMIN_PASSWORD,
                                              "csrf_token": token}, follow_redirects=False)
    assert resp.status_code == 403


def test_logout_needs_the_csrf_token_and_ends_the_session(app: FastAPI,
                                                          admin_client: TestClient,
                                                          admin_csrf: str) -> None:
    stolen = admin_client.cookies[COOKIE]
    for data in ({}, {"csrf_token": "nope"}):
        resp = admin_client.post("/logout", data=data, follow_redirects=False)
        assert resp.status_code == 403
        assert "CSRF token is missing or does not match" in resp.json()["detail"]
    assert not is_login_redirect(admin_client)  # still logged in
    resp = admin_client.post("/logout", data={"csrf_token": admin_csrf},
                             follow_redirects=False)
    assert (resp.status_code, resp.headers["location"]) == (303, "/login")
    assert f'{COOKIE}=""' in resp.headers["set-cookie"] and "Max-Age=0" in resp.headers[
        "set-cookie"]
    assert is_login_redirect(admin_client)
    replay = TestClient(app, cookies={COOKIE: stolen})
    assert is_login_redirect(replay)  # a copy of the old cookie no longer works


def test_tampered_or_foreign_cookies_are_rejected(admin_client: TestClient,
                                                  app: FastAPI) -> None:
    good = admin_client.cookies[COOKIE]
    payload, stamp, signature = good.rsplit(".", 2)
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    _, content = URLSafeTimedSerializer(b"x").loads_unsafe(good)
    forgeries = [
        f"{payload}.{stamp}.{flipped}",
        URLSafeTimedSerializer(b"another key", salt="classprobe.admin-session").dumps(content),
        good + "x",
        "garbage",
    ]
    for value in forgeries:
        browser = TestClient(app, cookies={COOKIE: value})
        assert is_login_redirect(browser), value
    assert not is_login_redirect(admin_client)


def test_session_expires_after_12_hours(app: FastAPI, admin_client: TestClient,
                                        clock: Clock) -> None:
    with Session(app.state.engine) as db:
        started = db.exec(select(AdminLogin)).one().created_at
    clock.now = started + timedelta(hours=12) - timedelta(seconds=1)
    assert not is_login_redirect(admin_client)
    clock.now = started + timedelta(hours=12)
    assert is_login_redirect(admin_client)


def test_disabled_user_is_logged_out_and_cannot_log_in(app: FastAPI, engine: Engine,
                                                       admin_client: TestClient,
                                                       anon: TestClient) -> None:
    assert not is_login_redirect(admin_client)
    with Session(engine) as db:
        disable_user(db, ADMIN_USER)
    assert is_login_redirect(admin_client)
    resp = login(anon)
    assert resp.status_code == 200 and WRONG in resp.text


def test_new_password_ends_sessions(engine: Engine, admin_client: TestClient) -> None:
    with Session(engine) as db:
        set_password(db, ADMIN_USER, "a brand new password")
    assert is_login_redirect(admin_client)


def test_rate_limit_per_user_and_address(client: TestClient, admin_user: str,
                                         clock: Clock) -> None:
    for _ in range(5):
        assert WRONG in login(client, password="wrong password!").text
    blocked = login(client)  # even the right password
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "900"
    assert "<h1>Too many login attempts</h1>" in blocked.text
    assert "Please wait about 15\nminutes" in blocked.text
    assert is_login_redirect(client)
    assert WRONG in login(client, "someone-else", "wrong password!").text  # not blocked
    clock.now += timedelta(minutes=14)
    assert login(client).status_code == 429
    clock.now += timedelta(minutes=1)
    assert login(client).status_code == 303


def test_a_success_clears_the_failures(client: TestClient, admin_user: str) -> None:
    for _ in range(4):
        login(client, password="wrong password!")
    assert login(client).status_code == 303
    for _ in range(4):
        assert login(client, password="wrong password!").status_code == 200


def test_no_password_in_logs(client: TestClient, admin_user: str,
                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    login(client, password="wrong password but secret")
    login(client)
    assert "admin login failed from testclient" in caplog.text
    assert "admin 'test-admin' logged in from testclient" in caplog.text
    assert "wrong password but secret" not in caplog.text
    assert ADMIN_PASSWORD not in caplog.text


def test_sessions_work_across_collector_processes(tmp_path: Path, settings: Settings,
                                                  admin_client: TestClient) -> None:
    second = create_app(settings)  # same database, no CLASSPROBE_SECRET_KEY: shares its key
    with TestClient(second, cookies=dict(admin_client.cookies)) as other:
        assert not is_login_redirect(other)


def test_admin_form_dependency(app: FastAPI, admin_client: TestClient, admin_csrf: str,
                               anon: TestClient) -> None:
    @app.post("/test-form")
    def form(admin: AdminFormDep) -> dict[str, str]:
        return {"user": admin.username}

    ok = admin_client.post("/test-form", data={"csrf_token": admin_csrf})
    assert ok.json() == {"user": ADMIN_USER}
    assert admin_client.post("/test-form", data={"csrf_token": "x"}).status_code == 403
    refused = anon.post("/test-form", data={"csrf_token": admin_csrf},
                        follow_redirects=False)
    assert (refused.status_code, refused.headers["location"]) == (303, "/login")


def test_csrf_input_in_templates() -> None:
    template = environment().from_string("<form>{{ csrf_input(session) }}</form>")
    assert template.render(session=AdminSession("a", 'x"<y')) == (
        '<form><input type="hidden" name="csrf_token" value="x&#34;&lt;y"></form>')
    assert template.render(session=None) == "<form></form>"
    assert template.render() == "<form></form>"

"""The authorisation matrix: every route the collector serves, who may use it, and the
status each kind of caller gets.

Callers: nobody, the agent of site A, the agent of site B, an admin API key, a logged-in
admin web session, and a share link of site A (sent as a bearer token where it is not
part of the address). A route missing from :data:`MATRIX` fails
:func:`test_every_route_has_a_row`, so a new route must say who may call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from collector.app import create_app
from collector.settings import Settings
from tests.security.routes import app_routes
from tests.security.world import (
    PROFILE,
    ROOM,
    SITE_A,
    SITE_B,
    World,
    bearer,
    close_world,
    make_world,
    report_body,
)

A, B, R = quote(SITE_A), quote(SITE_B), quote(ROOM)
CALLERS = ("none", "agent_a", "agent_b", "admin_key", "session", "share")

PUBLIC = "public"  # anyone (a capability, if any, is in the address or the body)
AGENT = "agent"  # an agent credential
ADMIN_KEY = "admin key"  # the admin API key only (writes and the timetable)
ADMIN_READ = "admin read"  # the admin API key or an admin session (read APIs)
PAGE = "page"  # an admin session; others are sent to /login
FORM = "form"  # an admin session and its CSRF token; others are sent to /login

ALLOWED = {
    PUBLIC: set(CALLERS),
    AGENT: {"agent_a", "agent_b"},
    ADMIN_KEY: {"admin_key"},
    ADMIN_READ: {"admin_key", "session"},
    PAGE: {"session"},
    FORM: {"session"},
}

Kwargs = dict[str, Any]
TIMETABLE = {"timezone": "Europe/London", "weekdays": ["mon"],
             "periods": [{"name": "P1", "start": "09:00", "end": "10:00"}]}
CAMPAIGN = {"name": "spring", "profiles": [PROFILE], "start_at": "2026-03-01T00:00:00Z",
            "end_at": "2026-04-01T00:00:00Z"}


def _no_body(_w: World, _caller: str) -> Kwargs:
    return {}


def _report(w: World, caller: str) -> Kwargs:
    return {"content": report_body(w.agent_b if caller == "agent_b" else w.agent_a)}


def _form(**fields: str) -> Callable[[World, str], Kwargs]:
    def body(w: World, caller: str) -> Kwargs:
        token = w.csrf if caller == "session" else "not-the-token"
        return {"data": {**fields, "csrf_token": token}}
    return body


def _const(**kwargs: Any) -> Callable[[World, str], Kwargs]:
    return lambda _w, _caller: kwargs


@dataclass(frozen=True)
class Row:
    method: str
    template: str
    access: str
    ok: int  # the status an allowed caller gets for this request
    path: str = ""  # concrete address; {share}, {flag}, {agent}, {link} are filled in
    body: Callable[[World, str], Kwargs] = field(default=_no_body)
    ok_for: tuple[tuple[str, int], ...] = ()  # callers whose status differs from ok

    def expected(self, caller: str) -> int:
        return dict(self.ok_for).get(caller, self.ok)

    def url(self, w: World) -> str:
        path = self.path or self.template
        return path.format(share=w.share_token, flag=w.flag_key, agent=w.agent_a.agent_id,
                           link=w.spare_share_id)


SITE_API = f"/api/v1/sites/{A}"
MATRIX = [
    # speed-test server and other open endpoints
    Row("GET", "/speed/ping", PUBLIC, 200),
    Row("GET", "/speed/download", PUBLIC, 200, "/speed/download?bytes=10"),
    Row("POST", "/speed/upload", PUBLIC, 200, body=_const(content=b"x" * 10)),
    Row("GET", "/speedtest/latency.txt", PUBLIC, 200),
    Row("GET", "/speedtest/random{width}x{height}.jpg", PUBLIC, 200,
        "/speedtest/random350x350.jpg"),
    Row("GET", "/speedtest/upload.php", PUBLIC, 200),
    Row("POST", "/speedtest/upload.php", PUBLIC, 200, body=_const(content=b"x" * 10)),
    Row("GET", "/favicon.ico", PUBLIC, 200),
    Row("GET", "/openapi.json", PUBLIC, 200),
    Row("GET", "/docs", PUBLIC, 200),
    Row("MOUNT", "/static", PUBLIC, 200, "/static/classprobe.js"),
    Row("GET", "/metrics", PUBLIC, 200),  # open unless metrics_token is set (own test)
    Row("GET", "/api/v1/signing-key", PUBLIC, 200),
    Row("GET", "/login", PUBLIC, 200, ok_for=(("session", 303),)),  # already logged in
    Row("POST", "/login", PUBLIC, 403, body=_const(data={"username": "x", "password": "y"})),
    Row("POST", "/logout", PUBLIC, 403),  # no CSRF token: refused for everyone
    # capabilities in the body or the address
    Row("POST", "/api/v1/enrol", PUBLIC, 200, body=lambda w, _c: {"json": {
        "token": w.site_token_a, "room": ROOM, "agent_version": "0.1.0"}}),
    Row("GET", "/r/{flag_key}", PUBLIC, 200, "/r/{flag}"),
    Row("POST", "/r/{flag_key}", PUBLIC, 429, "/r/{flag}", _const(data={"note": "no sound"}),
        ok_for=(("none", 201),)),  # the first flag; then the room's flag limit answers
    Row("GET", "/r/{flag_key}/qr.svg", PUBLIC, 200, "/r/{flag}/qr.svg"),
    Row("GET", "/share/{token}", PUBLIC, 200, "/share/{share}"),
    Row("GET", "/share/{token}/report.json", PUBLIC, 200, "/share/{share}/report.json"),
    Row("GET", "/share/{token}/report.csv", PUBLIC, 200, "/share/{share}/report.csv"),
    # agents
    Row("POST", "/api/v1/reports", AGENT, 200, body=_report),
    Row("GET", "/api/v1/agent/control", AGENT, 200),
    Row("POST", "/api/v1/flags", AGENT, 201, body=_const(json={"note": "projector"})),
    # admin API key: writes and the timetable
    Row("POST", "/api/v1/profiles", ADMIN_KEY, 422,
        body=_const(content=b"not = [toml", headers={"Content-Type": "application/toml"})),
    Row("POST", "/api/v1/sites/{site}/campaigns", ADMIN_KEY, 201, f"{SITE_API}/campaigns",
        _const(json=CAMPAIGN)),
    Row("POST", "/api/v1/sites/{site}/rooms/{room}/tests", ADMIN_KEY, 201,
        f"{SITE_API}/rooms/{R}/tests", _const(json={"start_in_s": 60, "duration_s": 10})),
    Row("GET", "/api/v1/sites/{site}/timetable", ADMIN_KEY, 404, f"{SITE_API}/timetable"),
    Row("PUT", "/api/v1/sites/{site}/timetable", ADMIN_KEY, 200, f"{SITE_API}/timetable",
        _const(json=TIMETABLE)),
    Row("DELETE", "/api/v1/sites/{site}/timetable", ADMIN_KEY, 200, f"{SITE_API}/timetable"),
    # read APIs: admin key or admin session
    Row("GET", "/api/v1/sites", ADMIN_READ, 200),
    Row("GET", "/api/v1/profiles", ADMIN_READ, 200),
    Row("GET", "/api/v1/profiles/{profile_id}", ADMIN_READ, 200, f"/api/v1/profiles/{PROFILE}"),
    Row("GET", "/api/v1/sites/{site}/readiness", ADMIN_READ, 200, f"{SITE_API}/readiness"),
    Row("GET", "/api/v1/sites/{site}/export", ADMIN_READ, 200, f"{SITE_API}/export"),
    Row("GET", "/api/v1/sites/{site}/fleet", ADMIN_READ, 200, f"{SITE_API}/fleet"),
    Row("GET", "/api/v1/sites/{site}/campaigns", ADMIN_READ, 200, f"{SITE_API}/campaigns"),
    Row("GET", "/api/v1/sites/{site}/compare", ADMIN_READ, 404,
        f"{SITE_API}/compare?profile={PROFILE}&before=autumn&after=spring"),
    Row("GET", "/api/v1/sites/{site}/room-tests", ADMIN_READ, 200, f"{SITE_API}/room-tests"),
    Row("GET", "/api/v1/sites/{site}/room-tests/{job_id}", ADMIN_READ, 404,
        f"{SITE_API}/room-tests/no-such-job"),
    Row("GET", "/api/v1/sites/{site}/rooms/{room}/timeline", ADMIN_READ, 200,
        f"{SITE_API}/rooms/{R}/timeline"),
    # admin web pages (session)
    Row("GET", "/", PAGE, 200),
    Row("GET", "/fleet", PAGE, 200),
    Row("GET", "/profiles", PAGE, 200),
    Row("GET", "/sites/{site}", PAGE, 200, f"/sites/{A}"),
    Row("GET", "/sites/{site}/report", PAGE, 200, f"/sites/{A}/report"),
    Row("GET", "/sites/{site}/report.json", PAGE, 200, f"/sites/{A}/report.json"),
    Row("GET", "/sites/{site}/report.csv", PAGE, 200, f"/sites/{A}/report.csv"),
    Row("GET", "/sites/{site}/compare", PAGE, 200, f"/sites/{A}/compare"),
    Row("GET", "/sites/{site}/rooms/{room}", PAGE, 200, f"/sites/{A}/rooms/{R}"),
    Row("GET", "/sites/{site}/rooms/{room}/devices/{agent_id}", PAGE, 200,
        f"/sites/{A}/rooms/{R}/devices/{{agent}}"),
    Row("GET", "/sites/{site}/share", PAGE, 200, f"/sites/{A}/share"),
    Row("POST", "/sites/{site}/share", FORM, 201, f"/sites/{A}/share",
        _form(profile=PROFILE, days="7")),
    Row("POST", "/sites/{site}/share/{link_id}/revoke", FORM, 303,
        f"/sites/{A}/share/{{link}}/revoke", _form()),
]


def _client_and_headers(w: World, caller: str) -> tuple[Any, dict[str, str]]:
    secrets = {"agent_a": w.agent_a.credential, "agent_b": w.agent_b.credential,
               "admin_key": w.admin_key, "share": w.share_token}
    if caller == "session":  # a copy: what the server answers must not change the session
        return TestClient(w.app, cookies=dict(w.session_client.cookies.items())), {}
    return w.client, bearer(secrets[caller]) if caller in secrets else {}


def call(w: World, row: Row, caller: str) -> httpx.Response:
    client, headers = _client_and_headers(w, caller)
    kwargs = dict(row.body(w, caller))
    headers = {**headers, **kwargs.pop("headers", {})}
    method = "GET" if row.method == "MOUNT" else row.method
    return client.request(method, row.url(w), headers=headers, follow_redirects=False,
                          **kwargs)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world for the whole table (rows run in order: the timetable is read, set,
    then deleted; the revoke row revokes a spare link, not the one the share rows use)."""
    w = make_world(tmp_path_factory.mktemp("matrix"))
    yield w
    close_world(w)


def test_every_route_has_a_row(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/r.db", data_dir=tmp_path))
    served = app_routes(app)
    listed = {(r.method, r.template) for r in MATRIX}
    assert served - listed == set(), "routes without a row in the authorisation matrix"
    assert listed - served == set(), "rows for routes the app no longer serves"
    assert len(listed) == len(MATRIX), "a route has two rows"


def _denied(row: Row, resp: httpx.Response) -> None:
    if row.access in (PAGE, FORM):
        assert resp.status_code == 303, resp.text
        assert resp.headers["location"].startswith("/login"), resp.headers
        return
    assert resp.status_code == 401, resp.text
    assert resp.headers.get("www-authenticate") == "Bearer"
    assert isinstance(resp.json()["detail"], str)


@pytest.mark.parametrize("row", MATRIX, ids=[f"{r.method} {r.template}" for r in MATRIX])
def test_route(world: World, row: Row) -> None:
    """Every caller outside the row's access class is refused (401, or a redirect to the
    login page for HTML pages); every caller inside gets the row's status. Refused callers
    go first, so a refused write would show up in the allowed caller's answer."""
    allowed = ALLOWED[row.access]
    for caller in [c for c in CALLERS if c not in allowed] + [c for c in CALLERS
                                                              if c in allowed]:
        resp = call(world, row, caller)
        if caller in allowed:
            assert resp.status_code == row.expected(caller), (caller, resp.text[:300])
        else:
            _denied(row, resp)

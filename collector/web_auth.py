"""Admin sessions for the HTML pages: the signed cookie, the login check, CSRF.

The cookie ``classprobe_session`` is an itsdangerous ``URLSafeTimedSerializer`` payload
signed with the server secret (:func:`collector.services.secrets.server_secret`); it holds
the form (CSRF) token ``c`` and, once logged in, a random session id ``s``. Only the
SHA-256 of the id is stored (table ``AdminLogin``), so logout, disabling the user or 12 h
passing end the session on the next request. A visitor who is not logged in gets a cookie
with a CSRF token only (for the login form); logging in makes a new session id and a new
CSRF token.

For routes:

- ``admin: AdminPageDep`` (:func:`require_admin_page`) — the logged-in admin, else a 303
  redirect to ``/login?next=<this page>``;
- ``admin: AdminFormDep`` (:func:`require_admin_form`) — the same, for a POST form, plus
  the check of its ``csrf_token`` field (403 when missing or wrong);
- :func:`check_csrf` to check a token read some other way;
- in templates, ``{{ csrf_input(session) }}`` inside every POST form (``session`` is the
  :class:`AdminSession`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, HTTPException, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2 import Undefined
from markupsafe import Markup, escape
from sqlmodel import Session

from collector.errors import Problem
from collector.models import AdminLogin, AdminUser, utcnow
from collector.services.secrets import SESSION, server_secret

COOKIE = "classprobe_session"
CSRF_FIELD = "csrf_token"
MAX_AGE = timedelta(hours=12)
SIGNING_SALT = "classprobe.admin-session"
LOGIN_PATH = "/login"


@dataclass(frozen=True)
class AdminSession:
    """The administrator behind a request and the CSRF token its forms must send back."""

    username: str
    csrf_token: str


class LoginRequired(HTTPException):
    """Not logged in: answered (by FastAPI's HTTPException handler) with a 303 to the
    login page, which comes back to ``next_path`` afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(status_code=303, detail="log in to see this page",
                         headers={"Location": login_url(next_path)})


def login_url(next_path: str) -> str:
    target = safe_next(next_path)
    return LOGIN_PATH if target == "/" else f"{LOGIN_PATH}?{urlencode({'next': target})}"


def safe_next(value: str | None) -> str:
    """``value`` when it is a path on this site, else ``"/"`` (no open redirect: refuses
    absolute URLs, ``//host``, backslashes and control characters)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def now_of(request: Request) -> datetime:
    """The current time; tests may set ``app.state.clock`` to a function returning it."""
    clock: Callable[[], datetime] = getattr(request.app.state, "clock", utcnow)
    return clock()


def _serializer(request: Request) -> URLSafeTimedSerializer:
    state = request.app.state
    serializer: URLSafeTimedSerializer | None = getattr(state, "session_serializer", None)
    if serializer is None:
        key = server_secret(state.engine, SESSION, state.settings)
        serializer = URLSafeTimedSerializer(key, salt=SIGNING_SALT)
        state.session_serializer = serializer
    return serializer


def read_cookie(request: Request) -> dict[str, str]:
    """The verified cookie payload, or ``{}`` (absent, tampered, expired or malformed)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        payload: Any = _serializer(request).loads(raw, max_age=int(MAX_AGE.total_seconds()))
    except BadSignature:
        return {}
    if not isinstance(payload, dict) or not isinstance(payload.get("c"), str):
        return {}
    return {k: v for k, v in payload.items() if k in ("c", "s") and isinstance(v, str)}


def _write_cookie(request: Request, response: Response, payload: dict[str, str]) -> None:
    response.set_cookie(COOKIE, _serializer(request).dumps(payload),
                        max_age=int(MAX_AGE.total_seconds()), path="/", httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def _logged_in_user(request: Request, session_id: str) -> AdminUser | None:
    with Session(request.app.state.engine) as db:
        login = db.get(AdminLogin, _id_hash(session_id))
        if login is None or login.ended_at is not None:
            return None
        if now_of(request) - login.created_at >= MAX_AGE:
            return None
        user = db.get(AdminUser, login.user_id)
        return None if user is None or user.disabled else user


def current_admin(request: Request) -> AdminSession | None:
    """The logged-in administrator, or None (nothing raised)."""
    payload = read_cookie(request)
    session_id = payload.get("s")
    if not session_id:
        return None
    user = _logged_in_user(request, session_id)
    return None if user is None else AdminSession(user.username, payload["c"])


def _this_page(request: Request) -> str:
    if request.method not in ("GET", "HEAD"):
        return "/"
    raw = request.scope.get("raw_path")  # as the browser sent it: %20 stays %20
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    query = request.url.query
    return path + (f"?{query}" if query else "")


def require_admin_page(request: Request) -> AdminSession:
    """FastAPI dependency: the logged-in admin, else :class:`LoginRequired` (303)."""
    admin = current_admin(request)
    if admin is None:
        raise LoginRequired(_this_page(request))
    return admin


def check_csrf(request: Request, form_token: str | None) -> None:
    """A 403 :class:`Problem` unless ``form_token`` is this browser's CSRF token."""
    expected = read_cookie(request).get("c")
    if not form_token or not expected or not hmac.compare_digest(
            form_token.encode("utf-8"), expected.encode("utf-8")):
        raise Problem(403, "the form's CSRF token is missing or does not match this "
                           "session: reload the page and send the form again")


AdminPageDep = Annotated[AdminSession, Depends(require_admin_page)]


async def require_admin_form(request: Request, admin: AdminPageDep) -> AdminSession:
    """FastAPI dependency for POST forms: the logged-in admin and a valid ``csrf_token``."""
    token = (await request.form()).get(CSRF_FIELD)
    check_csrf(request, token if isinstance(token, str) else None)
    return admin


AdminFormDep = Annotated[AdminSession, Depends(require_admin_form)]


def csrf_input(session: object = None) -> Markup:
    """The hidden form field carrying the CSRF token (empty without a session)."""
    token = None if isinstance(session, Undefined) else getattr(session, "csrf_token", None)
    if not isinstance(token, str):
        return Markup("")
    return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD,
                                                                        escape(token))


def visitor_csrf(request: Request) -> str:
    """The CSRF token for the login form: this browser's, or a new one to hand it with
    :func:`write_visitor_cookie`."""
    return read_cookie(request).get("c") or secrets.token_urlsafe(32)


def write_visitor_cookie(request: Request, response: Response, token: str) -> None:
    """Give a browser that is not logged in a cookie carrying only ``token``."""
    _write_cookie(request, response, {"c": token})


def start_session(request: Request, response: Response, user: AdminUser) -> AdminSession:
    """Log ``user`` in: a new session id and a new CSRF token (any old session ends)."""
    assert user.id is not None
    _end_stored_session(request)
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with Session(request.app.state.engine) as db:
        db.add(AdminLogin(id_hash=_id_hash(session_id), user_id=user.id,
                          created_at=now_of(request)))
        db.commit()
    _write_cookie(request, response, {"c": csrf, "s": session_id})
    return AdminSession(user.username, csrf)


def _end_stored_session(request: Request) -> None:
    session_id = read_cookie(request).get("s")
    if not session_id:
        return
    with Session(request.app.state.engine) as db:
        login = db.get(AdminLogin, _id_hash(session_id))
        if login is not None and login.ended_at is None:
            login.ended_at = now_of(request)
            db.add(login)
            db.commit()


def end_session(request: Request, response: Response) -> None:
    """Log out: the stored session ends (a copy of the cookie no longer works) and the
    browser is told to drop the cookie."""
    _end_stored_session(request)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")

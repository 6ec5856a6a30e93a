"""Login and logout for the HTML pages: ``GET/POST /login``, ``POST /logout``.

A wrong password, an unknown user and a disabled user get the same message. Failed
attempts are counted per user name and client address: after 5 failures within 15
minutes that pair gets a 429 page until the oldest failure is 15 minutes old. The count
is kept in memory, per collector process (several processes each allow 5; a restart
forgets them). Behind a reverse proxy, run uvicorn with ``--proxy-headers`` and
``--forwarded-allow-ips`` so the client address is the browser's, not the proxy's.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session

from collector.errors import Problem
from collector.render import render
from collector.services.users import LoginFailed, PasswordHashError, authenticate_user
from collector.web_auth import (
    CSRF_FIELD,
    check_csrf,
    current_admin,
    end_session,
    now_of,
    safe_next,
    start_session,
    visitor_csrf,
    write_visitor_cookie,
)

log = logging.getLogger("classprobe.collector.auth")

router = APIRouter(include_in_schema=False)

LOGIN_LIMIT = 5
LOGIN_WINDOW = timedelta(minutes=15)
MAX_TRACKED = 10_000
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                "Content-Security-Policy": "frame-ancestors 'none'",
                "Referrer-Policy": "same-origin"}
WRONG = "The user name or password is not right."
STALE = "The login form had expired. Please try again."


class LoginLimiter:
    """Failed logins per (user name, client address) in a sliding window, in memory."""

    def __init__(self, limit: int = LOGIN_LIMIT, window: timedelta = LOGIN_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[tuple[str, str], deque[datetime]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        times = self._failures.get(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def retry_after(self, key: tuple[str, str], now: datetime) -> timedelta | None:
        """How long ``key`` must wait before its next attempt, or None when it may try."""
        with self._lock:
            times = self._recent(key, now)
            if len(times) < self.limit:
                return None
            return times[0] + self.window - now

    def failed(self, key: tuple[str, str], now: datetime) -> None:
        with self._lock:
            if key not in self._failures and len(self._failures) >= MAX_TRACKED:
                for old in list(self._failures):
                    self._recent(old, now)
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)


_limiter_lock = threading.Lock()


def limiter_of(request: Request) -> LoginLimiter:
    """The app's limiter (made on first use; tests may replace ``app.state.login_limiter``)."""
    with _limiter_lock:
        limiter: LoginLimiter | None = getattr(request.app.state, "login_limiter", None)
        if limiter is None:
            limiter = LoginLimiter()
            request.app.state.login_limiter = limiter
        return limiter


def _login_page(request: Request, next_path: str, *, error: str | None = None,
                username: str = "", status: int = 200) -> HTMLResponse:
    token = visitor_csrf(request)
    html = render("login.html", next=next_path, error=error, username=username,
                  csrf_field=CSRF_FIELD, csrf_token=token)
    response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
    write_visitor_cookie(request, response, token)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    target = safe_next(next)
    if current_admin(request) is not None:
        return RedirectResponse(target, status_code=303)
    return _login_page(request, target)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request,
          username: Annotated[str, Form()] = "",
          password: Annotated[str, Form()] = "",
          csrf_token: Annotated[str, Form()] = "",
          next: Annotated[str, Form()] = "/") -> Response:
    target = safe_next(next)
    try:
        check_csrf(request, csrf_token)
    except Problem:
        return _login_page(request, target, error=STALE, username=username, status=403)
    client = request.client.host if request.client else "unknown"
    key = (username.strip().casefold(), client)
    limiter, now = limiter_of(request), now_of(request)
    wait = limiter.retry_after(key, now)
    if wait is not None:
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        log.warning("admin login refused: too many failures from %s", client)
        html = render("login_limited.html", minutes=minutes, limit=limiter.limit,
                      window_minutes=int(limiter.window.total_seconds() // 60))
        return HTMLResponse(html, status_code=429, headers={
            **PAGE_HEADERS, "Retry-After": str(math.ceil(wait.total_seconds()))})
    try:
        with Session(request.app.state.engine) as db:
            user = authenticate_user(db, username, password)
    except PasswordHashError as exc:
        log.error("admin login failed: a stored password hash cannot be used: %s", exc)
        user = None
    except LoginFailed:
        user = None
    if user is None:
        limiter.failed(key, now)
        log.warning("admin login failed from %s", client)
        return _login_page(request, target, error=WRONG, username=username)
    limiter.succeeded(key)
    log.info("admin %r logged in from %s", user.username, client)
    response = RedirectResponse(target, status_code=303)
    start_session(request, response, user)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf_token)
    admin = current_admin(request)
    response = RedirectResponse("/login", status_code=303)
    end_session(request, response)
    if admin is not None:
        log.info("admin %r logged out", admin.username)
    return response

"""Shared FastAPI dependencies: settings, the authenticated agent, the administrator."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Engine
from sqlmodel import Session

from collector.db import retry_if_connection_lost
from collector.errors import Problem
from collector.models import AdminKey
from collector.services.admin import AdminAuthError, authenticate_admin
from collector.services.enrolment import AgentIdentity, AuthError, authenticate
from collector.settings import Settings
from collector.web_auth import current_admin

BEARER = {"WWW-Authenticate": "Bearer"}


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def bearer(authorization: str | None, what: str) -> str:
    """The secret in ``Authorization: Bearer <secret>``, or a 401 naming what is wrong."""
    if not authorization:
        raise Problem(401, f"missing 'Authorization: Bearer <{what}>' header", headers=BEARER)
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Problem(401, f"Authorization scheme {scheme!r} is not 'Bearer <{what}>'",
                      headers=BEARER)
    return secret.strip()


def authenticated_admin(request: Request,
                        authorization: Annotated[str | None, Header()] = None) -> AdminKey:
    """The administrator behind ``Authorization: Bearer <admin key>``, or a 401."""
    key = bearer(authorization, "admin key")
    with Session(request.app.state.engine) as session:
        try:
            return authenticate_admin(session, key)
        except AdminAuthError as exc:
            raise Problem(401, str(exc), headers=BEARER) from exc


def authenticated_agent(request: Request,
                        authorization: Annotated[str | None, Header()] = None) -> AgentIdentity:
    """The agent behind ``Authorization: Bearer <credential>``, or a 401."""
    credential = bearer(authorization, "credential")

    engine = _autocommit_engine(request)

    def read() -> AgentIdentity:
        with Session(engine) as session:
            return authenticate(session, credential)
    try:
        return retry_if_connection_lost(read)
    except AuthError as exc:
        raise Problem(401, str(exc), headers=BEARER) from exc


def _autocommit_engine(request: Request) -> Engine:
    """The app's engine for single reads outside any transaction: no BEGIN and ROLLBACK
    round trips on a server database for each of the fleet's uploads and polls. Made once
    per engine (``execution_options`` costs ~65 µs, on every upload and poll)."""
    state = request.app.state
    engine: Engine = state.engine
    made: tuple[Engine, Engine] | None = getattr(state, "autocommit_engine", None)
    if made is None or made[0] is not engine:
        made = state.autocommit_engine = (
            engine, engine.execution_options(isolation_level="AUTOCOMMIT"))
    return made[1]


SettingsDep = Annotated[Settings, Depends(get_settings)]
AgentDep = Annotated[AgentIdentity, Depends(authenticated_agent)]
AdminDep = Annotated[AdminKey, Depends(authenticated_admin)]


def admin_or_session(request: Request,
                     authorization: Annotated[str | None, Header()] = None) -> str:
    """For read APIs: the admin API key (``Authorization: Bearer <admin key>``) or a
    logged-in admin web session (the ``classprobe_session`` cookie, as the UI's own JSON
    calls send it). A present Authorization header must be a valid admin key (an agent's
    credential is refused even next to a session cookie). Returns who it was: the key's
    label or the user name; else a 401 naming both ways in."""
    if authorization:
        return authenticated_admin(request, authorization).name
    admin = current_admin(request)
    if admin is None:
        raise Problem(401, "this read API needs 'Authorization: Bearer <admin key>' or a "
                           "logged-in admin session", headers=BEARER)
    return admin.username


AdminOrSessionDep = Annotated[str, Depends(admin_or_session)]

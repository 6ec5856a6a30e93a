"""Shared FastAPI dependencies: settings, the authenticated agent."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session

from collector.errors import Problem
from collector.services.enrolment import AgentIdentity, AuthError, authenticate
from collector.settings import Settings

BEARER = {"WWW-Authenticate": "Bearer"}


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def authenticated_agent(request: Request,
                        authorization: Annotated[str | None, Header()] = None) -> AgentIdentity:
    """The agent behind ``Authorization: Bearer <credential>``, or a 401."""
    if not authorization:
        raise Problem(401, "missing 'Authorization: Bearer <credential>' header", headers=BEARER)
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Problem(401, f"Authorization scheme {scheme!r} is not 'Bearer <credential>'",
                      headers=BEARER)
    with Session(request.app.state.engine) as session:
        try:
            return authenticate(session, credential.strip())
        except AuthError as exc:
            raise Problem(401, str(exc), headers=BEARER) from exc


SettingsDep = Annotated[Settings, Depends(get_settings)]
AgentDep = Annotated[AgentIdentity, Depends(authenticated_agent)]

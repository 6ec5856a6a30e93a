"""Flags: ``POST /api/v1/flags`` for agents, and the no-login room page ``/r/{flag_key}``.

The page has no login: its unguessable key (printed as a QR code in the room) is the
only capability. Against cross-site posting (another site's page making a visitor's
browser submit the form) the POST checks that ``Origin`` (or, without it, ``Referer``)
names this host; a request with neither header is not a browser's cross-site form and is
accepted. Behind a reverse proxy, the proxy must pass the original ``Host`` header.
The page may not be framed (no click-jacking of its big button) and is never cached.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter
from sqlmodel import Session

from agent.wire import FlagRequest, FlagResponse
from collector.deps import AgentDep
from collector.errors import wire_problem
from collector.models import utcnow
from collector.render import render
from collector.services.enrolment import AgentIdentity
from collector.services.flags import (
    MAX_NOTE,
    FlagError,
    FlagRateLimited,
    UnknownFlagKey,
    clean_note,
    local_time,
    qr_svg,
    raise_flag,
    room_by_key,
    site_zone,
)
from collector.streaming import read_limited
from collector.wire_validation import WireError, parse_with

router = APIRouter(tags=["flags"])

FLAG_BODY_LIMIT = 16_384
FORM_BODY_LIMIT = 65_536  # a note far over MAX_NOTE still gets the 422 page, not a 413
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                "Content-Security-Policy": "frame-ancestors 'none'",
                "Referrer-Policy": "same-origin"}


@cache
def flag_adapter() -> TypeAdapter[FlagRequest]:
    return TypeAdapter(FlagRequest)


def parse_flag(body: bytes) -> FlagRequest:
    """A ``FlagRequest`` from JSON, strictly typed; raises :class:`WireError`."""
    req = parse_with(flag_adapter(), body)
    problems = []
    if req.created_at is not None and req.created_at.tzinfo is None:
        problems.append(f"created_at {req.created_at.isoformat()} has no timezone")
    try:
        clean_note(req.note)
    except FlagError as exc:
        problems.append(f"note: {exc}")
    if problems:
        raise WireError(problems)
    return req


def _agent_flag(request: Request, who: AgentIdentity, req: FlagRequest) -> FlagResponse:
    # The flag is stamped with the collector's clock: the agent posts at once, and its own
    # clock may be off; req.created_at is only checked.
    with Session(request.app.state.engine) as session:
        flag, burst = raise_flag(session, who.site_id, who.room_id, req.note, "agent",
                                 who.agent_id, utcnow())
        return FlagResponse(flag_id=flag.id, burst_job_id=burst.id if burst else None)


@router.post("/api/v1/flags", status_code=201, response_model=FlagResponse,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"example": {"note": "videos froze"}}}}})
async def post_flag(request: Request, who: AgentDep) -> FlagResponse:
    """Report a problem in this agent's room now; the room's agents run a burst."""
    body = await read_limited(request, FLAG_BODY_LIMIT, "flag request")
    try:
        req = parse_flag(body)
    except WireError as exc:
        raise wire_problem(exc, "flag request") from exc
    return await run_in_threadpool(_agent_flag, request, who, req)


def same_origin(headers: Any) -> bool:
    """True unless Origin (else Referer) names another host than the request's Host."""
    host = (headers.get("host") or "").lower()
    origin = headers.get("origin")
    if origin is not None:
        return origin != "null" and urlsplit(origin).netloc.lower() == host
    referer = headers.get("referer")
    if referer is not None:
        return urlsplit(referer).netloc.lower() == host
    return True


def page(template: str, status: int, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(template, **context), status_code=status, headers=PAGE_HEADERS)


def _not_found() -> HTMLResponse:
    return page("flag_message.html", 404, title="Link not recognised",
                message="This report-a-problem link is not known. It may have been "
                        "replaced: ask your technician for the room's current link.")


def _form(session: Session, flag_key: str, status: int, note: str = "",
          error: str | None = None) -> HTMLResponse:
    room, site = room_by_key(session, flag_key)
    return page("flag.html", status, room=room.name, site=site.name, note=note,
                error=error, max_note=MAX_NOTE)


@router.get("/r/{flag_key}", response_class=HTMLResponse, include_in_schema=False,
            name="flag_page")
def flag_page(request: Request, flag_key: str) -> HTMLResponse:
    with Session(request.app.state.engine) as session:
        try:
            return _form(session, flag_key, 200)
        except UnknownFlagKey:
            return _not_found()


def _web_flag(request: Request, flag_key: str, note: str) -> HTMLResponse:
    now = utcnow()
    with Session(request.app.state.engine) as session:
        try:
            room, site = room_by_key(session, flag_key)
        except UnknownFlagKey:
            return _not_found()
        assert room.id is not None and site.id is not None
        zone = site_zone(session, site.id)
        try:
            raise_flag(session, site.id, room.id, note, "web", None, now)
        except FlagRateLimited as exc:
            return page("flag_message.html", 429, title="Already reported",
                        message=f"A problem in {room.name} was already reported at "
                                f"{local_time(exc.last, zone)}; the measurements are "
                                "running. Thank you.")
        except FlagError as exc:
            return _form(session, flag_key, 422, note=note, error=str(exc))
        return page("flag_message.html", 201, title="Thank you",
                    message=f"The problem in {room.name} is recorded "
                            f"({local_time(now, zone)}). The computers in the room are "
                            "measuring the network now.")


@router.post("/r/{flag_key}", response_class=HTMLResponse, include_in_schema=False)
async def flag_submit(request: Request, flag_key: str) -> HTMLResponse:
    if not same_origin(request.headers):
        return page("flag_message.html", 403, title="Not sent",
                    message="This form can only be sent from its own page. Open the "
                            "room's link again and press the button there.")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return page("flag_message.html", 415, title="Not sent",
                    message=f"The form arrived as {ctype or 'nothing'!r}; send it from "
                            "the page.")
    body = await read_limited(request, FORM_BODY_LIMIT, "form")
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    note = fields.get("note", [""])[0]
    return await run_in_threadpool(_web_flag, request, flag_key, note)


@router.get("/r/{flag_key}/qr.svg", include_in_schema=False)
def flag_qr(request: Request, flag_key: str) -> Response:
    with Session(request.app.state.engine) as session:
        try:
            room, site = room_by_key(session, flag_key)
        except UnknownFlagKey:
            return _not_found()
    url = str(request.url_for("flag_page", flag_key=flag_key))
    svg = qr_svg(url, f"Report a problem in {room.name} ({site.name})")
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

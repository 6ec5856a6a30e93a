"""``PUT/GET/DELETE /api/v1/sites/{site}/timetable``: a site's timetable (admin only).

The body and the answer are the :mod:`agent.timetable` document as JSON. A document that
does not validate is a 422 whose ``detail`` names the bad key, the value and why.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from agent.timetable import TimetableError
from collector.db import SessionDep
from collector.deps import AdminDep
from collector.errors import Problem
from collector.models import utcnow
from collector.routers.sites import site_or_404
from collector.services import timetables
from collector.streaming import read_limited

router = APIRouter(prefix="/api/v1", tags=["timetable"])

TIMETABLE_BODY_LIMIT = 262_144
EXAMPLE = {
    "timezone": "Europe/London",
    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
    "periods": [{"name": "P1", "start": "08:50", "end": "09:50"},
                {"name": "P2", "start": "10:00", "end": "11:00", "days": ["mon", "wed"]}],
    "terms": [{"name": "Autumn", "start": "2026-09-03", "end": "2026-12-18"}],
    "exceptions": [{"date": "2026-11-27", "closed": True, "note": "INSET"}],
    "exam_windows": [{"start": "2027-05-11T09:00", "end": "2027-05-11T12:00",
                      "note": "GCSE maths"}],
}


def _document(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # see wire_validation
        raise Problem(400, f"timetable is not JSON: {type(exc).__name__}: "
                           f"{str(exc)[:200]}") from exc
    if not isinstance(data, dict):
        raise Problem(422, f"timetable must be a JSON object, got {type(data).__name__}")
    return data


def _no_timetable(site: str) -> Problem:
    return Problem(404, f"site {site!r} has no timetable (set one with PUT or "
                        "'classprobe collector timetable set')")


def _put(request: Request, site: str, document: dict[str, Any]) -> dict[str, Any]:
    with Session(request.app.state.engine) as session:
        row = site_or_404(session, site)
        try:
            return timetables.set_timetable(session, row, document, utcnow())
        except TimetableError as exc:
            raise Problem(422, str(exc), [str(exc)]) from exc


@router.put("/sites/{site}/timetable", openapi_extra={
    "requestBody": {"required": True,
                    "content": {"application/json": {"schema": {"type": "object"},
                                                      "example": EXAMPLE}}}})
async def put_timetable(request: Request, site: str, _admin: AdminDep) -> dict[str, Any]:
    """Set (replace) the site's timetable; answers the stored, normalised document."""
    body = await read_limited(request, TIMETABLE_BODY_LIMIT, "timetable")
    return await run_in_threadpool(_put, request, site, _document(body))


@router.get("/sites/{site}/timetable")
def get_timetable(session: SessionDep, site: str, _admin: AdminDep) -> dict[str, Any]:
    row = site_or_404(session, site)
    assert row.id is not None
    document = timetables.load_document(session, row.id)
    if document is None:
        raise _no_timetable(site)
    return document


@router.delete("/sites/{site}/timetable")
def delete_timetable(session: SessionDep, site: str, _admin: AdminDep) -> dict[str, Any]:
    """Remove the site's timetable (agents then measure evenly); says whether it had one."""
    deleted = timetables.clear_timetable(session, site_or_404(session, site))
    return {"site": site, "deleted": deleted}

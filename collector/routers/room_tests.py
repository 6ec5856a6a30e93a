"""Coordinated room tests: schedule one (admin), read its result, list a site's tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from collector.db import SessionDep
from collector.deps import AdminDep, AdminOrSessionDep
from collector.errors import Problem
from collector.models import utcnow
from collector.routers.sites import site_or_404
from collector.services.room_test_aggregate import result_dict
from collector.services.room_tests import (
    RoomTestConflict,
    RoomTestError,
    UnknownJob,
    UnknownRoom,
    create_room_test,
    job_dict,
    list_room_tests,
    room_test_result,
)

router = APIRouter(prefix="/api/v1", tags=["room tests"])


class RoomTestRequest(BaseModel):
    """Body of ``POST /api/v1/sites/{site}/rooms/{room}/tests``: give start_at or start_in_s.

    URLs left out are filled in by each agent with its collector's ``/speed/`` endpoints.
    """

    model_config = ConfigDict(extra="forbid")

    start_at: datetime | None = Field(default=None, description="tz-aware ISO 8601 time")
    start_in_s: float | None = Field(default=None, description="seconds from now")
    duration_s: float = Field(description="5..300 s")
    directions: list[str] = Field(default_factory=lambda: ["download"])
    streams: int = 4
    download_url: str | None = None
    upload_url: str | None = None


def _start(body: RoomTestRequest, now: datetime) -> datetime:
    if (body.start_at is None) == (body.start_in_s is None):
        raise Problem(422, "give exactly one of start_at (ISO time) and start_in_s (seconds)",
                      [f"start_at {body.start_at!r}, start_in_s {body.start_in_s!r}"])
    if body.start_at is not None:
        return body.start_at
    assert body.start_in_s is not None
    return now + timedelta(seconds=body.start_in_s)


@router.post("/sites/{site}/rooms/{room}/tests", status_code=201)
def schedule_room_test(session: SessionDep, _admin: AdminDep, site: str, room: str,
                       body: RoomTestRequest) -> dict[str, Any]:
    """Ask every live agent of the room to run the bandwidth test at the same moment."""
    row = site_or_404(session, site)
    now = utcnow()
    try:
        job = create_room_test(session, row, room, _start(body, now), body.duration_s,
                               body.directions, body.streams, body.download_url,
                               body.upload_url, now)
    except UnknownRoom as exc:
        raise Problem(404, str(exc)) from exc
    except RoomTestError as exc:
        raise Problem(422, "room test refused", exc.problems) from exc
    except RoomTestConflict as exc:
        raise Problem(409, str(exc)) from exc
    return job_dict(job, row.name, room)


@router.get("/sites/{site}/room-tests/{job_id}")
def room_test(session: SessionDep, _admin: AdminOrSessionDep, site: str,
              job_id: str) -> dict[str, Any]:
    """Room total, per-device share, loaded latency, failures, window and start skew."""
    row = site_or_404(session, site)
    try:
        return result_dict(room_test_result(session, job_id, utcnow(), row))
    except UnknownJob as exc:
        raise Problem(404, str(exc)) from exc


@router.get("/sites/{site}/room-tests")
def room_tests(session: SessionDep, _admin: AdminOrSessionDep, site: str) -> list[dict[str, Any]]:
    """The site's room tests, newest first, each with its result so far."""
    return [result_dict(r) for r in list_room_tests(session, site_or_404(session, site),
                                                    utcnow())]

"""``POST /api/v1/enrol``: a site enrolment token buys an agent its own credential."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from agent.wire import EnrolResponse
from collector.errors import Problem, wire_problem
from collector.models import utcnow
from collector.services.enrolment import AuthError, enrol
from collector.streaming import read_limited
from collector.wire_validation import WireError, parse_enrol

router = APIRouter(prefix="/api/v1", tags=["agents"])

ENROL_BODY_LIMIT = 16_384
ENROL_EXAMPLE = {"token": "<site enrolment token>", "room": "Room 12", "agent_version": "0.1.0"}


def _enrol(request: Request, body: bytes) -> EnrolResponse:
    try:
        req = parse_enrol(body)
    except WireError as exc:
        raise wire_problem(exc, "enrolment request") from exc
    with Session(request.app.state.engine) as session:
        try:
            return enrol(session, req, utcnow())
        except AuthError as exc:
            raise Problem(401, str(exc)) from exc


@router.post("/enrol", response_model=EnrolResponse,
             openapi_extra={"requestBody": {"content": {"application/json": {
                 "example": ENROL_EXAMPLE}}, "required": True}})
async def enrol_agent(request: Request) -> EnrolResponse:
    """Exchange a site enrolment token for a per-agent credential (shown once)."""
    body = await read_limited(request, ENROL_BODY_LIMIT, "enrolment body")
    return await run_in_threadpool(_enrol, request, body)

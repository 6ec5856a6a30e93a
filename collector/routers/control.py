"""``GET /api/v1/agent/control``: the agent's poll for its timetable, jobs and the clock.

Headers the agent sends: ``X-Classprobe-Agent-Version`` (recorded as the agent's version)
and ``X-Classprobe-Clock-Offset`` (collector clock minus agent clock in seconds, as the
agent last measured it from ``server_time``; recorded for fleet health).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated

from fastapi import APIRouter, Header, Request

from agent.wire import AgentControl
from collector.db import SessionDep
from collector.deps import AgentDep
from collector.errors import Problem
from collector.models import utcnow
from collector.ratelimit import check_agent_rate
from collector.services.control import build_control, record_poll

router = APIRouter(prefix="/api/v1", tags=["agents"])

VERSION_HEADER = "X-Classprobe-Agent-Version"
OFFSET_HEADER = "X-Classprobe-Clock-Offset"
MAX_VERSION_CHARS = 64


def parse_offset(raw: str | None) -> float | None:
    """The clock offset header as finite seconds; a 422 naming the value otherwise."""
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise Problem(422, f"{OFFSET_HEADER} {raw!r} is not a finite number of seconds")
    return value


def parse_version(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    version = raw.strip()
    if len(version) > MAX_VERSION_CHARS or not version.isprintable():
        raise Problem(422, f"{VERSION_HEADER} {version[:MAX_VERSION_CHARS]!r} is not a version "
                           f"(printable, at most {MAX_VERSION_CHARS} characters)")
    return version


@router.get("/agent/control", response_model=AgentControl)
def agent_control(
    request: Request, session: SessionDep, who: AgentDep,
    agent_version: Annotated[str | None, Header(alias=VERSION_HEADER)] = None,
    clock_offset: Annotated[str | None, Header(alias=OFFSET_HEADER)] = None,
) -> AgentControl:
    """The site's timetable and salt, the room's pending jobs, and the collector's time."""
    received = utcnow()
    check_agent_rate(request, who.agent_id, "GET /api/v1/agent/control")
    offset, version = parse_offset(clock_offset), parse_version(agent_version)
    now = received
    record_poll(session, who.agent_id, now, version, offset)
    control = build_control(session, who, now)
    # Received and answered times, NTP style: the agent's clock estimate then excludes
    # however long the database took.
    return dataclasses.replace(control, received_at=received, server_time=utcnow())

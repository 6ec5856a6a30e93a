"""``POST/GET /api/v1/profiles``, ``GET /api/v1/profiles/{id}``: requirement profiles.

Built-in profiles ship with the collector; a supplier adds its own by POSTing the TOML
file (administrators only). A profile that does not validate is a 422 whose ``detail``
names the key, the value and why; a reused id is a 422 naming both profiles.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlmodel import Session

from collector.db import SessionDep
from collector.deps import AdminDep, AdminOrSessionDep
from collector.errors import Problem
from collector.services.profiles import (
    ProfileError,
    RegistryEntry,
    add_profile,
    profile_summary,
    registry_entries,
)
from collector.streaming import read_limited

router = APIRouter(prefix="/api/v1", tags=["profiles"])

PROFILE_BODY_LIMIT = 262_144
MEDIA_TYPES = ("application/toml", "text/plain")
UPLOAD_NAME = "uploaded profile"
EXAMPLE = '''id = "acme-reader"
version = "2026.1"
title = "Acme Reader"
[source]
citation = "Acme Reader network requirements, 2026"
confidence = "P"
[[requirements]]
id = "rtt"
title = "Round-trip time below 150 ms"
metric = "tcp_connect_ms"
unit = "ms"
stat = "p50"
statistic = "p95"
op = "<"
threshold = 150
severity = "must"
window = "in_lesson"
targets = ["*.acme-reader.example"]
'''


def _entries(session: Session) -> list[RegistryEntry]:
    try:
        return registry_entries(session)
    except ProfileError as exc:  # a stored profile that no longer validates
        raise Problem(500, f"the profile registry is inconsistent: {exc}", [str(exc)]) from exc


def _add(request: Request, text: str) -> dict[str, str]:
    with Session(request.app.state.engine) as session:
        try:
            profile = add_profile(session, text, UPLOAD_NAME)
        except ProfileError as exc:
            raise Problem(422, str(exc), [str(exc)]) from exc
    return {"id": profile.id, "version": profile.version}


@router.post("/profiles", status_code=201, openapi_extra={
    "requestBody": {"required": True, "content": {
        t: {"schema": {"type": "string"}, "example": EXAMPLE} for t in MEDIA_TYPES}}})
async def post_profile(request: Request, _admin: AdminDep) -> JSONResponse:
    """Add a supplier profile: the body is the profile's TOML text."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise Problem(415, f"Content-Type {media or '(none)'!r} is not one of "
                           f"{', '.join(MEDIA_TYPES)}: send the profile's TOML text")
    body = await read_limited(request, PROFILE_BODY_LIMIT, "profile")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, f"{UPLOAD_NAME} is not UTF-8 text: {exc}") from exc
    return JSONResponse(await run_in_threadpool(_add, request, text), status_code=201)


@router.get("/profiles")
def list_profiles(session: SessionDep, _admin: AdminOrSessionDep) -> list[dict[str, Any]]:
    """Every profile: the built-ins, then the suppliers'."""
    return [profile_summary(e) for e in _entries(session)]


@router.get("/profiles/{profile_id}")
def get_profile(session: SessionDep, _admin: AdminOrSessionDep, profile_id: str) -> dict[str, Any]:
    """One profile in full, with its TOML text."""
    entries = _entries(session)
    for entry in entries:
        if entry.profile.id == profile_id:
            return {**asdict(entry.profile), "builtin": entry.builtin,
                    "document": entry.document}
    known = ", ".join(e.profile.id for e in entries)
    raise Problem(404, f"unknown profile {profile_id!r}; known: {known}")

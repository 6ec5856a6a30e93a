"""Sites, readiness verdicts, exports and profiles (JSON API)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from collector.db import SessionDep
from collector.errors import Problem
from collector.models import Site, utcnow
from collector.services.export import to_csv, to_json_list
from collector.services.profiles import Profile
from collector.services.queries import measurement_rows
from collector.services.readiness import profile_dict
from collector.services.site_report import build_site_report, report_dict
from collector.services.sites import UnknownSite, get_site, list_sites

router = APIRouter(prefix="/api/v1", tags=["reports"])


def site_or_404(session: SessionDep, name: str) -> Site:
    try:
        return get_site(session, name)
    except UnknownSite as exc:
        raise Problem(404, str(exc)) from exc


def chosen_profiles(request: Request, profile_id: str | None) -> list[Profile]:
    profiles: dict[str, Profile] = request.app.state.profiles
    if profile_id is None:
        return list(profiles.values())
    if profile_id not in profiles:
        raise Problem(404, f"unknown profile {profile_id!r}; known: {', '.join(profiles)}")
    return [profiles[profile_id]]


@router.get("/sites")
def sites(session: SessionDep) -> list[dict[str, Any]]:
    return [{"name": s.name, "rooms": s.rooms, "agents": s.agents,
             "last_seen": s.last_seen.isoformat() if s.last_seen else None}
            for s in list_sites(session)]


@router.get("/sites/{site}/readiness")
def readiness(request: Request, session: SessionDep, site: str,
              profile: str | None = None) -> dict[str, Any]:
    """Verdicts for one profile, or every profile when none is named."""
    row = site_or_404(session, site)
    chosen = chosen_profiles(request, profile)
    return report_dict(build_site_report(session, row, chosen, utcnow()))


@router.get("/sites/{site}/export", response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/json": {}}}})
def export(session: SessionDep, site: str,
           format: Annotated[Literal["csv", "json"], Query()] = "csv") -> Response:
    """Every measurement of the site, one row each."""
    rows = measurement_rows(session, site_or_404(session, site))
    if format == "json":
        return JSONResponse(to_json_list(rows))
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", site)
    disposition = f'attachment; filename="classprobe-{safe}-measurements.csv"'
    return PlainTextResponse(to_csv(rows), media_type="text/csv",
                             headers={"Content-Disposition": disposition})


@router.get("/profiles")
def profiles(request: Request) -> list[dict[str, Any]]:
    return [profile_dict(p) for p in request.app.state.profiles.values()]

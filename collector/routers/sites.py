"""Sites, readiness verdicts, exports and profiles (JSON API)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from collector.db import SessionDep
from collector.deps import AdminOrSessionDep
from collector.errors import Problem
from collector.models import Site, utcnow
from collector.render import render_site_report
from collector.services.campaigns import UnknownCampaign
from collector.services.export import to_csv, to_json_list
from collector.services.queries import measurement_rows
from collector.services.report_formats import report_csv, report_text
from collector.services.report_provenance import provenance_for
from collector.services.site_report import UnknownProfile, readiness_report, report_dict
from collector.services.sites import UnknownSite, get_site, list_sites

router = APIRouter(prefix="/api/v1", tags=["reports"])


def site_or_404(session: SessionDep, name: str) -> Site:
    try:
        return get_site(session, name)
    except UnknownSite as exc:
        raise Problem(404, str(exc)) from exc


@router.get("/sites")
def sites(session: SessionDep, _admin: AdminOrSessionDep) -> list[dict[str, Any]]:
    return [{"name": s.name, "rooms": s.rooms, "agents": s.agents,
             "last_seen": s.last_seen.isoformat() if s.last_seen else None}
            for s in list_sites(session)]


def _download_name(site: str, what: str) -> dict[str, str]:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", site)
    return {"Content-Disposition": f'attachment; filename="classprobe-{safe}-{what}"'}


@router.get("/sites/{site}/readiness", response_class=Response,
            responses={200: {"content": {"application/json": {}, "text/html": {},
                                         "text/csv": {}, "text/plain": {}}}})
def readiness(session: SessionDep, _admin: AdminOrSessionDep, site: str, profile: str | None = None,
              campaign: str | None = None,
              format: Annotated[Literal["json", "html", "csv", "text"], Query()] = "json",
              ) -> Response:
    """Verdicts for one profile, a campaign's profiles, or every profile (built-in and
    supplier); with ``campaign``, only the measurements inside its window count."""
    try:
        report = readiness_report(session, site, profile, campaign, utcnow())
    except (UnknownSite, UnknownProfile, UnknownCampaign) as exc:
        raise Problem(404, str(exc)) from exc
    if format == "html":
        return HTMLResponse(render_site_report(report, provenance_for(session, report)))
    if format == "csv":
        return PlainTextResponse(report_csv(report), media_type="text/csv",
                                 headers=_download_name(site, "readiness.csv"))
    if format == "text":
        return PlainTextResponse(report_text(report))
    return JSONResponse(report_dict(report))


@router.get("/sites/{site}/export", response_class=Response,
            responses={200: {"content": {"text/csv": {}, "application/json": {}}}})
def export(session: SessionDep, _admin: AdminOrSessionDep, site: str,
           format: Annotated[Literal["csv", "json"], Query()] = "csv") -> Response:
    """Every measurement of the site, one row each."""
    rows = measurement_rows(session, site_or_404(session, site))
    if format == "json":
        return JSONResponse(to_json_list(rows))
    return PlainTextResponse(to_csv(rows), media_type="text/csv",
                             headers=_download_name(site, "measurements.csv"))


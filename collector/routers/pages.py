"""HTML pages: the list of sites and a printable readiness report per site."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from collector.db import SessionDep
from collector.models import utcnow
from collector.render import render_index, render_site_report
from collector.routers.sites import site_or_404
from collector.services.site_report import readiness_report
from collector.services.sites import list_sites

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index(session: SessionDep) -> HTMLResponse:
    return HTMLResponse(render_index(list_sites(session)))


@router.get("/sites/{site}/report", response_class=HTMLResponse)
def site_report(session: SessionDep, site: str) -> HTMLResponse:
    """Every profile, built-in and supplier."""
    site_or_404(session, site)
    return HTMLResponse(render_site_report(readiness_report(session, site, None, None,
                                                            utcnow())))

"""Admin HTML pages at the top of the site: the sites, the fleet, the profiles, and the
printable readiness report of a site; plus how every admin page is answered.

Every page here needs an admin session (:func:`collector.web_auth.require_admin_page`);
without one the browser is sent to ``/login``. Pages are never cached or framed, and
carry a Content-Security-Policy that allows only this collector's own scripts and styles
(the report, a self-contained document with its styles inline, allows inline styles and
no script at all). The site, room, device and comparison pages are in
:mod:`collector.routers.ui`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from collector.db import SessionDep
from collector.render import STATIC, render, render_site_report
from collector.services.fleet import fleet_of
from collector.services.profiles import profile_registry
from collector.services.report_provenance import provenance_for
from collector.services.site_report import readiness_report
from collector.services.sites import UnknownSite, get_site, list_sites
from collector.web_auth import AdminPageDep, AdminSession, now_of

router = APIRouter(include_in_schema=False)

PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
              "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
FAVICON = STATIC / "favicon.svg"


def page_headers(csp: str = PAGE_CSP) -> dict[str, str]:
    return {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
            "Content-Security-Policy": csp, "Referrer-Policy": "same-origin",
            "X-Content-Type-Options": "nosniff"}


def page(template: str, admin: AdminSession, *, status: int = 200, nav: str = "sites",
         **context: Any) -> HTMLResponse:
    """An admin page: ``template`` rendered with the admin's ``session`` (navigation,
    CSRF fields) and ``context``."""
    return HTMLResponse(render(template, session=admin, nav=nav, **context),
                        status_code=status, headers=page_headers())


def error_page(admin: AdminSession, status: int, title: str, message: str,
               back: tuple[str, str] = ("All sites", "/")) -> HTMLResponse:
    """A clear error page (404 for an unknown site, room or device…)."""
    return page("error.html", admin, status=status, title=title, message=message, back=back)


def unknown_site(admin: AdminSession, name: str) -> HTMLResponse:
    return error_page(admin, 404, "Site not found", f"There is no site named “{name}”.")


@router.get("/", response_class=HTMLResponse)
def index(session: SessionDep, admin: AdminPageDep) -> HTMLResponse:
    return page("index.html", admin, sites=list_sites(session))


@router.get("/fleet", response_class=HTMLResponse)
def fleet(request: Request, session: SessionDep, admin: AdminPageDep) -> HTMLResponse:
    """Every site's agents: live, at risk, silent, revoked, with their warnings."""
    now = now_of(request)
    fleets = [fleet_of(session, get_site(session, s.name), now) for s in list_sites(session)]
    return page("fleet.html", admin, nav="fleet", fleets=fleets, now=now)


@router.get("/profiles", response_class=HTMLResponse)
def profiles(session: SessionDep, admin: AdminPageDep) -> HTMLResponse:
    """The requirement profiles the collector judges with, built-in and supplier."""
    return page("profiles.html", admin, nav="profiles",
                profiles=list(profile_registry(session).values()))


@router.get("/sites/{site}/report", response_class=HTMLResponse)
def site_report(request: Request, session: SessionDep, admin: AdminPageDep,
                site: str) -> HTMLResponse:
    """Every profile, built-in and supplier, with the methods used and the window."""
    try:
        report = readiness_report(session, site, None, None, now_of(request))
    except UnknownSite:
        return unknown_site(admin, site)
    html = render_site_report(report, provenance_for(session, report), session=admin)
    return HTMLResponse(html, headers=page_headers(REPORT_CSP))


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    """Browsers ask for it on every site; the report has no ``<link rel=icon>``."""
    return FileResponse(FAVICON, media_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=86400"})

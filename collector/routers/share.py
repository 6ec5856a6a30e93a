"""Share links and signed reports.

Public (the token is the only capability):

- ``GET /share/{token}``: the scoped report page (one site + profile (+ campaign));
- ``GET /share/{token}/report.json``: the same report, signed (Ed25519);
- ``GET /share/{token}/report.csv``;
- ``GET /api/v1/signing-key``: the collector's public key, to check downloaded reports.

An unknown or tampered token gets a 404 page, an expired or revoked one a 410 page; both
say only that the link is not valid. Share pages are never cached, never framed, and send
no ``Referer`` (the token is in their address).

Admin (logged-in session; POST forms CSRF-checked):

- ``GET /sites/{site}/share``: the site's links and the form to make one;
- ``POST /sites/{site}/share``: make a link and show its address once;
- ``POST /sites/{site}/share/{link_id}/revoke``;
- ``GET /sites/{site}/report.json`` (signed) and ``/sites/{site}/report.csv``: the full
  report of every profile, or one (``?profile=``), or a campaign's (``?campaign=``).
"""

from __future__ import annotations

import base64
import re
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from sqlmodel import Session

from collector.db import SessionDep
from collector.errors import Problem
from collector.render import render
from collector.services.campaigns import CampaignError, UnknownCampaign
from collector.services.profiles import ProfileError
from collector.services.report_formats import report_csv
from collector.services.share import (
    ShareError,
    ShareRefusal,
    ShareScope,
    create_share,
    list_shares,
    resolve,
    revoke_share,
    share_dict,
    share_options,
    share_url,
)
from collector.services.shared_report import shared_report, shared_report_csv
from collector.services.signing import key_id as signing_key_id
from collector.services.signing import public_key_pem, raw_public_key, sign_report, signing_key
from collector.services.site_report import (
    SiteReport,
    UnknownProfile,
    readiness_report,
    report_dict,
)
from collector.services.sites import SiteError, UnknownSite, get_site
from collector.web_auth import AdminFormDep, AdminPageDep, AdminSession, now_of

router = APIRouter(tags=["reports"])

SHARE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                 "Content-Security-Policy": "frame-ancestors 'none'",
                 "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
ADMIN_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
INVALID = {"unknown": (404, "This link is not valid"),
           "expired": (410, "This link is no longer valid"),
           "revoked": (410, "This link is no longer valid")}


def _attachment(*parts: str) -> dict[str, str]:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(("classprobe", *parts)))
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def _invalid(reason: str) -> HTMLResponse:
    status, title = INVALID[reason]
    return HTMLResponse(render("share_invalid.html", title=title), status_code=status,
                        headers=SHARE_HEADERS)


def _shared(request: Request,
            token: str) -> tuple[ShareScope, SiteReport, dict[str, Any]] | HTMLResponse:
    """The token's scope, its report and the shared dict; or the page refusing it."""
    now = now_of(request)
    with Session(request.app.state.engine) as session:
        found = resolve(session, token, now)
        if isinstance(found, ShareRefusal):
            return _invalid(found.reason)
        try:
            report, data = shared_report(session, found, now)
        except (SiteError, CampaignError):  # its site, campaign or profile is gone
            return _invalid("unknown")
    return found, report, data


@router.get("/share/{token}", response_class=HTMLResponse, include_in_schema=False)
def share_page(request: Request, token: str) -> HTMLResponse:
    found = _shared(request, token)
    if isinstance(found, HTMLResponse):
        return found
    _scope, _report, data = found
    return HTMLResponse(render("share_report.html", r=data, base=f"/share/{token}"),
                        headers=SHARE_HEADERS)


@router.get("/share/{token}/report.json", include_in_schema=False)
def share_json(request: Request, token: str) -> Response:
    found = _shared(request, token)
    if isinstance(found, HTMLResponse):
        return found
    scope, _report, data = found
    doc = sign_report(data, signing_key(request.app.state.engine), now_of(request))
    return JSONResponse(doc, headers={**SHARE_HEADERS,
                                      **_attachment(scope.site, scope.profile, "report.json")})


@router.get("/share/{token}/report.csv", include_in_schema=False)
def share_csv(request: Request, token: str) -> Response:
    found = _shared(request, token)
    if isinstance(found, HTMLResponse):
        return found
    scope, report, _data = found
    return PlainTextResponse(shared_report_csv(report), media_type="text/csv",
                             headers={**SHARE_HEADERS,
                                      **_attachment(scope.site, scope.profile, "report.csv")})


@router.get("/api/v1/signing-key", response_model=None)
def signing_key_endpoint(request: Request,
                         format: Annotated[Literal["json", "pem"], Query()] = "json",
                         ) -> dict[str, str] | PlainTextResponse:
    """The public key that signs reports (``classprobe report verify FILE --public-key
    KEY.pem`` checks a downloaded report against it); ``?format=pem`` gives the PEM file."""
    key = signing_key(request.app.state.engine)
    pem = public_key_pem(key)
    if format == "pem":
        return PlainTextResponse(pem, media_type="application/x-pem-file")
    return {"alg": "Ed25519", "key_id": signing_key_id(key),
            "public_key": base64.b64encode(raw_public_key(key.public_key())).decode("ascii"),
            "public_key_pem": pem}


# --- admin ------------------------------------------------------------------------------

def _site_or_404(session: Session, site: str) -> None:
    try:
        get_site(session, site)
    except UnknownSite as exc:
        raise Problem(404, str(exc)) from exc


def _links_page(request: Request, session: Session, admin: AdminSession, site: str,
                status: int = 200, error: str | None = None,
                chosen: dict[str, Any] | None = None) -> HTMLResponse:
    now = now_of(request)
    links = [share_dict(session, link, now)
             for link in list_shares(session, get_site(session, site))]
    return HTMLResponse(render("share_links.html", session=admin, site=site, links=links,
                               share_options=share_options(session, site), error=error,
                               chosen=chosen or {}),
                        status_code=status, headers=ADMIN_HEADERS)


@router.get("/sites/{site}/share", response_class=HTMLResponse, include_in_schema=False)
def share_links(request: Request, session: SessionDep, admin: AdminPageDep,
                site: str) -> HTMLResponse:
    _site_or_404(session, site)
    return _links_page(request, session, admin, site)


@router.post("/sites/{site}/share", response_class=HTMLResponse, include_in_schema=False)
def share_create(request: Request, session: SessionDep, admin: AdminFormDep, site: str,
                 profile: Annotated[str, Form()] = "",
                 campaign: Annotated[str, Form()] = "",
                 days: Annotated[str, Form()] = "") -> HTMLResponse:
    _site_or_404(session, site)
    chosen = {"profile": profile, "campaign": campaign, "days": days}
    try:
        n_days = int(days)
    except ValueError:
        return _links_page(request, session, admin, site, 422,
                           f"days {days!r} is not a whole number", chosen)
    try:
        link, token = create_share(session, site, profile, campaign or None, n_days,
                                   admin.username, now_of(request))
    except (ShareError, UnknownProfile, UnknownCampaign, ProfileError) as exc:
        return _links_page(request, session, admin, site, 422, str(exc), chosen)
    base = request.app.state.settings.public_url or str(request.base_url)
    return HTMLResponse(render("share_created.html", session=admin, site=site,
                               link=share_dict(session, link, now_of(request)),
                               url=share_url(base, token)),
                        status_code=201, headers=ADMIN_HEADERS)


@router.post("/sites/{site}/share/{link_id}/revoke", include_in_schema=False)
def share_revoke(session: SessionDep, _admin: AdminFormDep, site: str,
                 link_id: int) -> RedirectResponse:
    try:
        revoke_share(session, link_id, get_site(session, site))
    except SiteError as exc:  # unknown site, or no such link in it
        raise Problem(404, str(exc)) from exc
    return RedirectResponse(f"/sites/{quote(site, safe='')}/share", status_code=303)


def _admin_report(request: Request, session: Session, site: str, profile: str | None,
                  campaign: str | None) -> SiteReport:
    try:
        return readiness_report(session, site, profile, campaign, now_of(request))
    except (UnknownSite, UnknownProfile, UnknownCampaign) as exc:
        raise Problem(404, str(exc)) from exc


@router.get("/sites/{site}/report.json", include_in_schema=False)
def site_report_json(request: Request, session: SessionDep, _admin: AdminPageDep, site: str,
                     profile: str | None = None, campaign: str | None = None) -> JSONResponse:
    """The full report (every profile, one, or a campaign's), signed."""
    report = _admin_report(request, session, site, profile, campaign)
    doc = sign_report(report_dict(report), signing_key(request.app.state.engine),
                      now_of(request))
    return JSONResponse(doc, headers={**ADMIN_HEADERS, **_attachment(site, "report.json")})


@router.get("/sites/{site}/report.csv", include_in_schema=False)
def site_report_csv(request: Request, session: SessionDep, _admin: AdminPageDep, site: str,
                    profile: str | None = None, campaign: str | None = None,
                    ) -> PlainTextResponse:
    report = _admin_report(request, session, site, profile, campaign)
    return PlainTextResponse(report_csv(report), media_type="text/csv",
                             headers={**ADMIN_HEADERS, **_attachment(site, "report.csv")})

"""The admin web UI below a site: the site, a room (its school-day timeline), a device,
and campaign comparison; and the JSON the room's charts are drawn from.

Pages need an admin session (:data:`collector.web_auth.AdminPageDep`); an unknown site,
room or device gets a 404 page that says which. ``GET
/api/v1/sites/{site}/rooms/{room}/timeline`` is a read API like the others: the admin
API key or an admin session (the room page's own script sends the session cookie).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from collector.db import SessionDep
from collector.deps import AdminOrSessionDep
from collector.errors import Problem
from collector.models import Agent, Room, Site
from collector.routers.pages import error_page, page, unknown_site
from collector.services.campaigns import (
    CampaignError,
    UnknownCampaign,
    compare_campaigns,
    list_campaigns,
)
from collector.services.device_view import INVENTORY_PROBE, latest_device_runs
from collector.services.flags import site_zone
from collector.services.fleet import fleet_of
from collector.services.profiles import profile_registry
from collector.services.room_readiness import room_verdicts
from collector.services.room_tests import (
    UnknownRoom,
    find_room,
    latest_room_capacity,
    list_room_tests,
)
from collector.services.share import share_options
from collector.services.site_report import readiness_report
from collector.services.sites import UnknownSite, get_site
from collector.services.timeline import (
    CHARTS,
    Timeline,
    TimelineError,
    chart_table,
    latest_day,
    parse_day,
    room_timeline,
    series_summary,
    timeline_dict,
)
from collector.web_auth import AdminPageDep, now_of

router = APIRouter()
DayParam = Annotated[str | None, Query(alias="date", description="YYYY-MM-DD, local day")]


def _site(session: Session, name: str) -> Site | None:
    try:
        return get_site(session, name)
    except UnknownSite:
        return None


def _room(session: Session, site: Site, name: str) -> Room | None:
    try:
        return find_room(session, site, name)
    except UnknownRoom:
        return None


def site_path(site: str) -> str:
    return "/sites/" + quote(site, safe="")


def room_path(site: str, room: str) -> str:
    return f"{site_path(site)}/rooms/{quote(room, safe='')}"


def _day(request: Request, session: Session, site: Site, room: Room,
         text: str | None) -> date:
    if text:
        return parse_day(text)
    assert site.id is not None
    today = now_of(request).astimezone(site_zone(session, site.id)).date()
    return latest_day(session, site, room, today)


@router.get("/api/v1/sites/{site}/rooms/{room}/timeline", tags=["reports"])
def timeline(request: Request, session: SessionDep, _admin: AdminOrSessionDep, site: str,
             room: str,
             day: DayParam = None) -> dict[str, Any]:
    """One school day of the room in 5-minute bins: per series (latency, bandwidth,
    Wi-Fi load) each device's median and the room's median of them, as ``[time, value]``
    pairs (time = the bin's start, Unix seconds), and the day's lesson periods with their
    local start and end. ``date`` is the local day (``YYYY-MM-DD``, the site's timetable
    zone); without it, the day of the room's newest measurement."""
    found = _site(session, site)
    if found is None:
        raise Problem(404, f"unknown site {site!r}")
    try:
        room_row = find_room(session, found, room)
        chosen = _day(request, session, found, room_row, day)
    except UnknownRoom as exc:
        raise Problem(404, str(exc)) from exc
    except TimelineError as exc:
        raise Problem(422, str(exc)) from exc
    return timeline_dict(room_timeline(session, found, room_row, chosen))


def _room_statuses(session: Session, site: Site, request: Request) -> dict[str, dict[str, str]]:
    profiles = profile_registry(session).values()
    return {room: {v.profile.id: v.status for v in verdicts}
            for room, verdicts in room_verdicts(session, site, profiles,
                                                now_of(request)).items()}


@router.get("/sites/{site}", response_class=HTMLResponse, include_in_schema=False)
def site_page(request: Request, session: SessionDep, admin: AdminPageDep,
              site: str) -> HTMLResponse:
    """Rooms with their status per profile, verdicts, fleet, capacity, campaigns, room
    tests, and the form to share a report."""
    found = _site(session, site)
    if found is None:
        return unknown_site(admin, site)
    now = now_of(request)
    report = readiness_report(session, found.name, None, None, now)
    return page("site.html", admin, report=report, base=site_path(found.name),
                room_status=_room_statuses(session, found, request),
                campaigns=list_campaigns(session, found),
                room_tests=list_room_tests(session, found, now),
                share_options=share_options(session, found.name))


def _charts(tl: Timeline) -> list[dict[str, Any]]:
    out = []
    for key, title in CHARTS.items():
        shown, rows = chart_table(tl, key)
        out.append({"key": key, "title": title, "series": shown, "rows": rows,
                    "summaries": [series_summary(tl, s) for s in shown]})
    return out


@router.get("/sites/{site}/rooms/{room}", response_class=HTMLResponse,
            include_in_schema=False)
def room_page(request: Request, session: SessionDep, admin: AdminPageDep, site: str,
              room: str, day_text: DayParam = None) -> HTMLResponse:
    """The room's school day (periods shaded), its devices, verdicts and capacity."""
    found = _site(session, site)
    if found is None:
        return unknown_site(admin, site)
    room_row = _room(session, found, room)
    if room_row is None:
        return error_page(admin, 404, "Room not found",
                          f"Site “{found.name}” has no room named “{room}”.",
                          (f"Back to {found.name}", site_path(found.name)))
    try:
        day = _day(request, session, found, room_row, day_text)
    except TimelineError as exc:
        return error_page(admin, 422, "Not a date", str(exc),
                          (f"Back to {room_row.name}", room_path(found.name, room_row.name)))
    now = now_of(request)
    tl = room_timeline(session, found, room_row, day)
    verdicts = room_verdicts(session, found, profile_registry(session).values(), now,
                             only=room_row.name).get(room_row.name, ())
    assert room_row.id is not None
    api = f"/api/v1{room_path(found.name, room_row.name)}/timeline"
    return page("room.html", admin, site=found.name, room=room_row.name, tl=tl,
                charts=_charts(tl), day=day, prev_day=day - timedelta(days=1),
                next_day=day + timedelta(days=1), base=room_path(found.name, room_row.name),
                site_base=site_path(found.name),
                timeline_url=f"{api}?{urlencode({'date': day.isoformat()})}",
                verdicts=verdicts,
                devices=[a for a in fleet_of(session, found, now).agents
                         if a.room == room_row.name],
                capacity=latest_room_capacity(session, room_row.id, now))


@router.get("/sites/{site}/rooms/{room}/devices/{agent_id}", response_class=HTMLResponse,
            include_in_schema=False)
def device_page(request: Request, session: SessionDep, admin: AdminPageDep, site: str,
                room: str, agent_id: str) -> HTMLResponse:
    """The device's state, its newest inventory and its newest result of each probe."""
    found = _site(session, site)
    if found is None:
        return unknown_site(admin, site)
    room_row = _room(session, found, room)
    agent = session.get(Agent, agent_id)
    if room_row is None or agent is None or agent.room_id != room_row.id:
        where = f"room “{room}”" if room_row is not None else f"site “{found.name}”"
        return error_page(admin, 404, "Device not found",
                          f"There is no device “{agent_id}” in {where}.",
                          (f"Back to {found.name}", site_path(found.name)))
    health = next(a for a in fleet_of(session, found, now_of(request)).agents
                  if a.agent_id == agent.id)
    runs = latest_device_runs(session, agent.id)
    return page("device.html", admin, site=found.name, room=room_row.name, agent=health,
                site_base=site_path(found.name), room_base=room_path(found.name, room_row.name),
                inventory=[r for r in runs if r.probe == INVENTORY_PROBE],
                results=[r for r in runs if r.probe != INVENTORY_PROBE])


@router.get("/sites/{site}/compare", response_class=HTMLResponse, include_in_schema=False)
def compare_page(request: Request, session: SessionDep, admin: AdminPageDep, site: str,
                 profile: str = "", before: str = "", after: str = "") -> HTMLResponse:
    """Campaign ``after`` against campaign ``before`` on one profile."""
    found = _site(session, site)
    if found is None:
        return unknown_site(admin, site)
    registry = profile_registry(session)
    chosen = {"profile": profile, "before": before, "after": after}
    status, error, comparison = 200, None, None
    if all(chosen.values()):
        try:
            comparison = compare_campaigns(session, found, registry, profile, before, after)
        except CampaignError as exc:
            status, error = 404 if isinstance(exc, UnknownCampaign) else 422, str(exc)
    elif any(chosen.values()):
        status, error = 422, "choose a profile and both campaigns"
    return page("compare.html", admin, status=status, site=found.name,
                site_base=site_path(found.name), profiles=list(registry.values()),
                campaigns=list_campaigns(session, found), chosen=chosen, error=error,
                comparison=comparison)

"""Everything a site's readiness report shows, gathered once for the API, page and CLI."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from collector.models import Room, Site
from collector.services.fleet import Fleet, fleet_dict, fleet_of
from collector.services.profiles import Profile
from collector.services.queries import failure_rows, latest_runs, measurement_rows
from collector.services.readiness import ProfileVerdict, evaluate, verdict_dict
from collector.services.room_tests import RoomCapacity, latest_room_capacity
from collector.services.rows import LatestRun
from collector.services.sites import AgentInfo, agents_of


@dataclass(frozen=True)
class SiteReport:
    site: str
    generated_at: datetime
    verdicts: tuple[ProfileVerdict, ...]
    agents: tuple[AgentInfo, ...]
    latest: tuple[LatestRun, ...] = ()
    fleet: Fleet | None = None
    capacity: tuple[RoomCapacity, ...] = ()
    """Each room's measured capacity: its latest complete coordinated room test."""


def room_capacities(session: Session, site: Site, now: datetime) -> tuple[RoomCapacity, ...]:
    rooms = session.exec(select(Room).where(Room.site_id == site.id)
                         .order_by(col(Room.name))).all()
    found = (latest_room_capacity(session, room.id, now) for room in rooms if room.id)
    return tuple(c for c in found if c is not None)


def build_site_report(session: Session, site: Site, profiles: Iterable[Profile],
                      now: datetime) -> SiteReport:
    profiles = list(profiles)
    metrics = {r.metric for p in profiles for r in p.requirements}
    rows = measurement_rows(session, site, metrics)
    failures = failure_rows(session, site)
    verdicts = tuple(evaluate(p, rows, failures, now) for p in profiles)
    return SiteReport(site.name, now, verdicts, tuple(agents_of(session, site)),
                      tuple(latest_runs(session, site)), fleet_of(session, site, now),
                      room_capacities(session, site, now))


def report_dict(report: SiteReport) -> dict[str, Any]:
    return {
        "site": report.site,
        "generated_at": report.generated_at.isoformat(),
        "profiles": [verdict_dict(v) for v in report.verdicts],
        "agents": [
            {"agent_id": a.agent_id, "room": a.room, "agent_version": a.agent_version,
             "created_at": a.created_at.isoformat(),
             "last_seen": a.last_seen.isoformat() if a.last_seen else None,
             "revoked": a.revoked}
            for a in report.agents
        ],
        "latest": [
            {"time": r.time.isoformat(), "agent_id": r.agent_id, "room": r.room,
             "probe": r.probe, "target": r.target, "status": r.status, "reason": r.reason,
             "values": [{"metric": m, "value": v, "unit": u, "stat": st, "method": meth}
                        for m, v, u, st, meth in r.values]}
            for r in report.latest
        ],
        "fleet": fleet_dict(report.fleet) if report.fleet else None,
        "room_capacity": [
            {"room": c.room, "job_id": c.job_id, "measured_at": c.measured_at.isoformat(),
             "download_mbps": c.download_mbps, "upload_mbps": c.upload_mbps,
             "devices": c.devices}
            for c in report.capacity
        ],
    }

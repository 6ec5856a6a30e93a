"""Readiness of each room on its own: the profiles judged on one room's measurements.

The site report judges the site as a whole; a room page (and the site page's room table)
wants "is *this* room ready, and why". :func:`room_verdicts` fetches the site's rows once,
splits them by room, and evaluates every profile on each room's rows alone, with the
room's own failed probe runs and its own room test. The evidence and remediation are then
about that room. A room without measurements is unknown for every profile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from collector.models import Room, Site
from collector.services.profiles import Profile
from collector.services.queries import failure_rows, measurement_rows
from collector.services.readiness import ProfileVerdict, evaluate_many
from collector.services.rows import FailureRow, MeasurementRow
from collector.services.site_report import report_metrics, room_capacities
from collector.services.sites import agents_of


def room_names(session: Session, site: Site) -> list[str]:
    return list(session.exec(select(Room.name).where(Room.site_id == site.id)
                             .order_by(col(Room.name))).all())


def room_verdicts(session: Session, site: Site, profiles: Iterable[Profile], now: datetime,
                  only: str | None = None) -> dict[str, tuple[ProfileVerdict, ...]]:
    """Per room (every room of the site, or only room ``only``), each profile's verdict on
    that room's measurements alone."""
    profiles = list(profiles)
    rooms = [r for r in room_names(session, site) if only is None or r == only]
    rows: dict[str, list[MeasurementRow]] = defaultdict(list)
    for row in measurement_rows(session, site, report_metrics(profiles)):
        rows[row.room].append(row)
    agent_room = {a.agent_id: a.room for a in agents_of(session, site)}
    failures: dict[str, list[FailureRow]] = defaultdict(list)
    for f in failure_rows(session, site):
        failures[agent_room.get(f.agent_id, "")].append(f)
    capacity = room_capacities(session, site, now)
    return {room: evaluate_many(profiles, rows.get(room, []), failures.get(room, []), now,
                                capacities=[c for c in capacity if c.room == room],
                                site=site.name)
            for room in rooms}

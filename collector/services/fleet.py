"""Fleet health: is each agent alive, is its clock right, is its spool overflowing, is it old.

States (:func:`agent_state`): ``live`` = seen (report or control poll) within
:data:`LIVE_WITHIN` (three missed polls), ``at-risk`` = seen within :data:`AT_RISK_WITHIN`,
``silent`` = longer or never, ``revoked`` = its credential was revoked. Warnings are
sentences naming the value: a clock more than :data:`CLOCK_WARN_S` off the collector's,
reports its spool had to drop in the last 24 h, a version older than the newest in the site.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from collector.models import Agent, Report, Room, Site

LIVE_WITHIN = timedelta(seconds=3 * 60)
AT_RISK_WITHIN = timedelta(hours=24)
DROPS_WITHIN = timedelta(hours=24)
CLOCK_WARN_S = 5.0
STATES = ("live", "at-risk", "silent", "revoked")


def agent_state(last_seen: datetime | None, revoked: bool, now: datetime) -> str:
    """``live`` / ``at-risk`` / ``silent`` / ``revoked`` (boundaries inclusive)."""
    if revoked:
        return "revoked"
    if last_seen is None:
        return "silent"
    age = now - last_seen
    if age <= LIVE_WITHIN:
        return "live"
    return "at-risk" if age <= AT_RISK_WITHIN else "silent"


def _amount(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def clock_warning(offset_s: float | None) -> str | None:
    """``offset_s`` is collector clock minus agent clock: positive = the agent is behind."""
    if offset_s is None or abs(offset_s) <= CLOCK_WARN_S:
        return None
    side = "behind" if offset_s > 0 else "ahead of"
    return f"clock {_amount(abs(offset_s))} {side} the collector"


def version_key(version: str) -> tuple[tuple[int, ...], int] | None:
    """An ordering key for ``1.2.3`` style versions (a suffix such as ``rc1`` sorts before
    the plain release); None when the version does not start with a number."""
    match = re.match(r"v?(\d+(?:\.\d+)*)(.*)$", version.strip())
    if match is None:
        return None
    release = [int(part) for part in match.group(1).split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    return tuple(release), 0 if match.group(2) else 1


@dataclass(frozen=True)
class AgentHealth:
    agent_id: str
    room: str
    agent_version: str
    created_at: datetime
    last_seen: datetime | None
    state: str
    clock_offset_s: float | None
    spool_dropped_24h: int
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class RoomHealth:
    room: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Fleet:
    site: str
    generated_at: datetime
    newest_version: str | None
    agents: tuple[AgentHealth, ...]
    rooms: tuple[RoomHealth, ...]


def _warnings(agent: Agent, dropped: int, newest: str | None) -> tuple[str, ...]:
    if agent.revoked:
        return ()
    out = [w for w in (clock_warning(agent.clock_offset_s),) if w]
    if dropped:
        out.append(f"spool dropped {dropped} report(s) in the last 24 h (the agent could not "
                   "upload for a long time)")
    mine, best = version_key(agent.agent_version), newest and version_key(newest)
    if mine is not None and best and mine < best:
        out.append(f"version {agent.agent_version} is older than {newest}, the newest in "
                   "this site")
    return tuple(out)


def _newest(agents: list[Agent]) -> str | None:
    keyed = [(k, a.agent_version) for a in agents if not a.revoked
             if (k := version_key(a.agent_version)) is not None]
    return max(keyed)[1] if keyed else None


def fleet_of(session: Session, site: Site, now: datetime) -> Fleet:
    """Every agent of ``site`` with its state and warnings, and the counts per room (rooms
    without an agent included, with zeros)."""
    rows = session.exec(
        select(Agent, Room.name).join(Room, col(Room.id) == Agent.room_id)
        .where(Agent.site_id == site.id).order_by(col(Room.name), col(Agent.created_at))
    ).all()
    dropped = dict(session.exec(
        select(Report.agent_id, func.sum(Report.spool_dropped))
        .join(Agent, col(Agent.id) == Report.agent_id)
        .where(Agent.site_id == site.id, col(Report.received_at) >= now - DROPS_WITHIN,
               col(Report.spool_dropped) > 0)
        .group_by(col(Report.agent_id))).all())
    newest = _newest([a for a, _ in rows])
    agents = tuple(
        AgentHealth(a.id, room, a.agent_version, a.created_at, a.last_seen,
                    agent_state(a.last_seen, a.revoked, now), a.clock_offset_s,
                    int(dropped.get(a.id) or 0),
                    _warnings(a, int(dropped.get(a.id) or 0), newest))
        for a, room in rows)
    room_names = session.exec(select(Room.name).where(Room.site_id == site.id)).all()
    per_room: dict[str, Counter[str]] = {name: Counter() for name in sorted(room_names)}
    for health in agents:
        per_room.setdefault(health.room, Counter())[health.state] += 1
    rooms = tuple(RoomHealth(room, {s: counts[s] for s in STATES})
                  for room, counts in per_room.items())
    return Fleet(site.name, now, newest, agents, rooms)


def fleet_dict(fleet: Fleet) -> dict[str, Any]:
    return {
        "site": fleet.site,
        "generated_at": fleet.generated_at.isoformat(),
        "newest_version": fleet.newest_version,
        "agents": [
            {"agent_id": a.agent_id, "room": a.room, "agent_version": a.agent_version,
             "created_at": a.created_at.isoformat(),
             "last_seen": a.last_seen.isoformat() if a.last_seen else None,
             "state": a.state, "clock_offset_s": a.clock_offset_s,
             "spool_dropped_24h": a.spool_dropped_24h, "warnings": list(a.warnings)}
            for a in fleet.agents],
        "rooms": [{"room": r.room, "agents": r.total, **r.counts} for r in fleet.rooms],
    }

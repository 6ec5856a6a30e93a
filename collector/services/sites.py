"""Sites, their enrolment tokens and their agents: what the admin CLI and pages need."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from collector.models import Agent, Room, Site
from collector.security import new_secret, secret_hash

MAX_NAME = 100


class SiteError(ValueError):
    """An admin operation that cannot be done; the message names the value."""


class UnknownSite(SiteError):
    def __init__(self, name: str) -> None:
        super().__init__(f"unknown site {name!r}")
        self.name = name


@dataclass(frozen=True)
class AgentInfo:
    agent_id: str
    room: str
    agent_version: str
    created_at: datetime
    last_seen: datetime | None
    revoked: bool


@dataclass(frozen=True)
class SiteSummary:
    name: str
    rooms: int
    agents: int
    last_seen: datetime | None


def check_site_name(name: str) -> str:
    if not name or name != name.strip():
        raise SiteError(f"site name {name!r} must be non-empty without surrounding spaces")
    if len(name) > MAX_NAME:
        raise SiteError(f"site name {name[:20]!r}… is {len(name)} characters (max {MAX_NAME})")
    if "/" in name or any(not ch.isprintable() for ch in name):
        raise SiteError(f"site name {name!r} must not contain '/' or control characters")
    return name


def get_site(session: Session, name: str) -> Site:
    site = session.exec(select(Site).where(Site.name == name)).first()
    if site is None:
        raise UnknownSite(name)
    return site


def create_site(session: Session, name: str) -> str:
    """Create the site; return its enrolment token (shown once, stored only hashed)."""
    check_site_name(name)
    if session.exec(select(Site).where(Site.name == name)).first() is not None:
        raise SiteError(f"site {name!r} already exists (use new-token to rotate its token)")
    token = new_secret()
    session.add(Site(name=name, token_hash=secret_hash(token), salt=new_secret()))
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise SiteError(f"site {name!r} already exists") from exc
    return token


def rotate_token(session: Session, name: str) -> str:
    """A new enrolment token for the site; the old one stops working. Agents keep theirs."""
    site = get_site(session, name)
    token = new_secret()
    site.token_hash = secret_hash(token)
    session.add(site)
    session.commit()
    return token


def revoke_agent(session: Session, agent_id: str) -> Agent:
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise SiteError(f"unknown agent {agent_id!r}")
    agent.revoked = True
    session.add(agent)
    session.commit()
    session.refresh(agent)
    return agent


def agents_of(session: Session, site: Site) -> list[AgentInfo]:
    rows = session.exec(
        select(Agent, Room.name)
        .join(Room, col(Room.id) == Agent.room_id)
        .where(Agent.site_id == site.id)
        .order_by(col(Room.name), col(Agent.created_at))
    ).all()
    return [AgentInfo(a.id, room, a.agent_version, a.created_at, a.last_seen, a.revoked)
            for a, room in rows]


def list_sites(session: Session) -> list[SiteSummary]:
    rooms = dict(session.exec(
        select(Room.site_id, func.count(col(Room.id))).group_by(col(Room.site_id))).all())
    agents = {sid: (n, seen) for sid, n, seen in session.exec(
        select(Agent.site_id, func.count(col(Agent.id)), func.max(Agent.last_seen))
        .group_by(col(Agent.site_id))).all()}
    out = []
    for site in session.exec(select(Site).order_by(Site.name)).all():
        assert site.id is not None
        n_agents, seen = agents.get(site.id, (0, None))
        out.append(SiteSummary(site.name, rooms.get(site.id, 0), n_agents, seen))
    return out

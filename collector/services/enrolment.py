"""Agents enrol with a site token and then authenticate with their own credential."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from agent.wire import EnrolRequest, EnrolResponse
from collector.models import Agent, Room, Site
from collector.security import new_secret, secret_hash


class AuthError(Exception):
    """A token or credential that is not accepted; the message says why (never the secret)."""


@dataclass(frozen=True)
class AgentIdentity:
    agent_id: str
    site_id: int
    room_id: int


def _room(session: Session, site_id: int, name: str) -> Room:
    query = select(Room).where(Room.site_id == site_id, Room.name == name)
    room = session.exec(query).first()
    if room is not None:
        return room
    try:
        with session.begin_nested():
            room = Room(site_id=site_id, name=name)
            session.add(room)
    except IntegrityError:  # another agent created the same room at the same moment
        room = session.exec(query).one()
    return room


def enrol(session: Session, request: EnrolRequest, now: datetime) -> EnrolResponse:
    """Create an agent in the token's site and room; return its credential (shown once)."""
    site = session.exec(select(Site).where(Site.token_hash == secret_hash(request.token))).first()
    if site is None or site.id is None:
        raise AuthError("enrolment token not recognised: ask the site's technician for a "
                        "current token ('classprobe collector create-site' or 'new-token')")
    room_name = request.room.strip()
    room = _room(session, site.id, room_name)
    assert room.id is not None
    credential = new_secret()
    agent = Agent(id=str(uuid.uuid4()), site_id=site.id, room_id=room.id,
                  credential_hash=secret_hash(credential), agent_version=request.agent_version,
                  created_at=now, last_seen=now)
    session.add(agent)
    session.commit()
    return EnrolResponse(agent_id=agent.id, credential=credential, site=site.name,
                         room=room_name, site_salt=site.salt)


def authenticate(session: Session, credential: str) -> AgentIdentity:
    """The agent holding ``credential``. Every upload and control poll asks, so this reads
    four columns through SQLAlchemy Core, not an ORM object (a third of the time)."""
    agent = Agent.__table__.c  # type: ignore[attr-defined]
    row = session.connection().execute(
        sa_select(agent.id, agent.site_id, agent.room_id, agent.revoked)
        .where(agent.credential_hash == secret_hash(credential))).first()
    if row is None:
        raise AuthError("agent credential not recognised: enrol the agent again")
    agent_id, site_id, room_id, revoked = row
    if revoked:
        raise AuthError(f"agent {agent_id} has been revoked: enrol it again with a site token")
    return AgentIdentity(agent_id, site_id, room_id)

"""Teacher-reported moments: a flag stores "something went wrong in this room now" and
starts a measurement burst there, so the data shows the network at that moment.

Nothing about the person is stored: no name, account, address or browser; only the time,
the room, where it came from (``agent`` or ``web``) and the optional note.

Rules:
- Every flag gets a ``burst`` job for its room, except when a burst for the room was made
  within ``BURST_REUSE``: then that burst covers this flag too (one burst at a time).
- The no-login web page is rate-limited: a second *web* flag in the same room within
  ``WEB_RATE_LIMIT`` is refused (:class:`FlagRateLimited`) and nothing is stored.
  Agent flags are authenticated and always stored.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import segno
from sqlmodel import Session, col, select

from collector.models import Flag, Job, Room, Site
from collector.security import new_secret
from collector.services.notify import enqueue_flag
from collector.services.room_tests import find_room
from collector.services.sites import SiteError
from collector.services.timetables import load_document

MAX_NOTE = 500
BURST_REUSE = timedelta(minutes=10)
WEB_RATE_LIMIT = timedelta(minutes=10)
SOURCES = ("agent", "web")
LIST_LIMIT = 500


class FlagError(SiteError):
    """A flag that cannot be stored (the message names the bad value)."""


class UnknownFlagKey(SiteError):
    def __init__(self) -> None:
        super().__init__("this report-a-problem link is not known (it may have been replaced)")


class FlagRateLimited(SiteError):
    """A web flag for a room that had one moments ago; ``last`` is when."""

    def __init__(self, room: str, last: datetime) -> None:
        super().__init__(f"a problem in {room} was already reported at "
                         f"{last:%H:%M} UTC; the measurements are running")
        self.last = last


@dataclass(frozen=True)
class FlagInfo:
    flag_id: str
    room: str
    created_at: datetime
    source: str
    note: str
    burst_job_id: str | None


def clean_note(note: str) -> str:
    """The note trimmed, with browsers' CRLF line breaks as LF; too long is an error."""
    note = note.replace("\r\n", "\n").strip()
    if len(note) > MAX_NOTE:
        raise FlagError(f"the note is {len(note)} characters long; at most {MAX_NOTE} fit")
    return note


def burst_reason(note: str, now: datetime) -> str:
    when = now.astimezone(UTC)
    return f"problem flagged at {when:%H:%M} UTC" + (f": {note}" if note else "")


def _recent_burst(session: Session, room_id: int, now: datetime) -> Job | None:
    return session.exec(select(Job).where(Job.room_id == room_id, Job.kind == "burst",
                                          col(Job.created_at) >= now - BURST_REUSE)
                        .order_by(col(Job.created_at).desc())).first()


def last_web_flag(session: Session, room_id: int, now: datetime) -> Flag | None:
    """The room's web flag within ``WEB_RATE_LIMIT`` before ``now``, if any."""
    return session.exec(select(Flag).where(Flag.room_id == room_id, Flag.source == "web",
                                           col(Flag.created_at) >= now - WEB_RATE_LIMIT)
                        .order_by(col(Flag.created_at).desc())).first()


def raise_flag(session: Session, site_id: int, room_id: int, note: str, source: str,
               agent_id: str | None, now: datetime) -> tuple[Flag, Job | None]:
    """Store a flag and the burst that measures it (a new one, or the room's recent one)."""
    if source not in SOURCES:
        raise FlagError(f"flag source {source!r} is not one of {SOURCES}")
    text = clean_note(note)
    if source == "web":
        earlier = last_web_flag(session, room_id, now)
        if earlier is not None:
            room = session.get(Room, room_id)
            raise FlagRateLimited(room.name if room else f"room {room_id}", earlier.created_at)
    flag = Flag(id=str(uuid.uuid4()), site_id=site_id, room_id=room_id, created_at=now,
                note=text, source=source, agent_id=agent_id)
    burst = _recent_burst(session, room_id, now)
    if burst is None:
        burst = Job(id=str(uuid.uuid4()), site_id=site_id, room_id=room_id, kind="burst",
                    start_at=now, reason=burst_reason(text, now), flag_id=flag.id,
                    created_at=now)
        session.add(burst)
    flag.job_id = burst.id
    session.add(flag)
    enqueue_flag(session, flag)  # notifications: flag_raised, in this transaction
    session.commit()
    session.refresh(flag)
    session.refresh(burst)
    return flag, burst


def room_by_key(session: Session, flag_key: str) -> tuple[Room, Site]:
    room = session.exec(select(Room).where(Room.flag_key == flag_key)).first() \
        if flag_key else None
    site = session.get(Site, room.site_id) if room is not None else None
    if room is None or site is None:
        raise UnknownFlagKey()
    return room, site


def flag_url(base_url: str, flag_key: str) -> str:
    return f"{base_url.rstrip('/')}/r/{flag_key}"


def qr_code(url: str) -> segno.QRCode:
    """The QR code of exactly ``url``; error correction at least M (a scuffed print scans)."""
    return segno.make(url, error="m", micro=False)


def qr_svg(url: str, title: str) -> bytes:
    out = io.BytesIO()
    qr_code(url).save(out, kind="svg", scale=8, border=4, title=title)
    return out.getvalue()


def room_link(session: Session, site: Site, room: str, base_url: str) -> str:
    """The room's report-a-problem URL; makes the room's random key the first time."""
    row = find_room(session, site, room)
    if not row.flag_key:
        row.flag_key = new_secret()
        session.add(row)
        session.commit()
        session.refresh(row)
    assert row.flag_key is not None
    return flag_url(base_url, row.flag_key)


def list_flags(session: Session, site: Site) -> list[FlagInfo]:
    """The site's flags, newest first (at most ``LIST_LIMIT``)."""
    rows = session.exec(select(Flag, Room.name).join(Room, col(Room.id) == Flag.room_id)
                        .where(Flag.site_id == site.id)
                        .order_by(col(Flag.created_at).desc()).limit(LIST_LIMIT)).all()
    return [FlagInfo(f.id, room, f.created_at, f.source, f.note, f.job_id) for f, room in rows]


def site_zone(session: Session, site_id: int) -> tzinfo:
    """The site's timezone from its timetable (UTC when it has none)."""
    document = load_document(session, site_id)
    name = document.get("timezone") if document else None
    if not isinstance(name, str):
        return UTC
    try:
        return ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        return UTC


def local_time(when: datetime, zone: tzinfo) -> str:
    """``HH:MM`` with the zone's abbreviation, as people in the room read clocks."""
    return when.astimezone(zone).strftime("%H:%M %Z")

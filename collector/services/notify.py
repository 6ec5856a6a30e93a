"""Nudges: notice what a site's people should hear about, and put it in the outbox.

Events (each one :class:`Event`, delivered by :mod:`collector.services.delivery`):

- ``verdict_changed``: a profile's overall verdict in a site differs from the one stored
  in :class:`~collector.models.VerdictState`. The first evaluation of a profile only
  records its verdict (nothing changed yet, so nothing is said).
- ``agent_silent``: an agent became ``silent`` (:func:`collector.services.fleet.agent_state`).
  One silence is one notification: :class:`~collector.models.SilentAgent` remembers it
  until the agent is seen again (its state is then ``live``, or ``at-risk`` if the loop
  ran only after its live minutes: either way it was back).
- ``flag_raised``: a teacher or an agent flagged a problem (:func:`enqueue_flag`, called
  by :func:`collector.services.flags.raise_flag` in the flag's own transaction).

Only sites with an enabled target that wants an event are examined for it, and a target
hears only of events that happened after it was created (an agent silent for months is
not news to a target added today). Detection changes state with compare-and-set updates,
so two collector processes on one database do not both report the same change.

Payloads hold no secret and no agent credential: names, statuses, reasons, times and a
link path to the page that explains (``/sites/{site}/report``).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from collector.models import (
    Agent,
    Flag,
    Notification,
    NotifyTarget,
    Room,
    SilentAgent,
    Site,
    VerdictState,
)
from collector.services.fleet import AT_RISK_WITHIN, agent_state
from collector.services.profiles import ProfileError
from collector.services.readiness import ProfileVerdict
from collector.services.site_report import readiness_report
from collector.services.sites import SiteError

log = logging.getLogger(__name__)

EVENTS = ("verdict_changed", "agent_silent", "flag_raised")
KINDS = ("webhook", "email")
TEST_EVENT = "test"
NOT_PASSING = ("fail", "warn")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class NotifyError(SiteError):
    """A notification target that cannot be stored (the message names the bad value)."""


@dataclass(frozen=True)
class Event:
    """Something to tell a site's targets: ``kind`` is one of :data:`EVENTS` (or
    ``test``); ``occurred_at`` is when it happened, ``detected_at`` when it was noticed."""

    kind: str
    site_id: int
    occurred_at: datetime
    detected_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


# --- targets -------------------------------------------------------------------------------

def parse_events(text: str | None) -> tuple[str, ...]:
    """``verdict_changed,flag_raised`` → the events, in :data:`EVENTS` order; None = all."""
    if text is None:
        return EVENTS
    wanted = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in wanted if e not in EVENTS]
    if unknown or not wanted:
        raise NotifyError(f"unknown event {unknown[0]!r}; events: {', '.join(EVENTS)}"
                          if unknown else f"no events given; events: {', '.join(EVENTS)}")
    return tuple(e for e in EVENTS if e in wanted)


def check_address(kind: str, address: str) -> str:
    """A webhook URL (http or https, with a host) or an e-mail address, else NotifyError."""
    address = address.strip()
    if kind == "webhook":
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NotifyError(f"webhook URL {address!r} is not an http:// or https:// URL "
                              "with a host")
        return address
    if kind == "email":
        if not _EMAIL.fullmatch(address):
            raise NotifyError(f"e-mail address {address!r} is not of the form name@domain")
        return address
    raise NotifyError(f"target kind {kind!r} is not one of {KINDS}")


def add_target(session: Session, site: Site, kind: str, address: str,
               events: Sequence[str], secret: str | None, now: datetime) -> NotifyTarget:
    """Store a target; a webhook without a given secret gets a random one (the caller
    shows it once). E-mail targets have no secret."""
    assert site.id is not None
    address = check_address(kind, address)
    if kind == "webhook" and secret is not None and len(secret) < 16:
        raise NotifyError(f"the webhook secret is {len(secret)} characters long; "
                          "use at least 16")
    target = NotifyTarget(site_id=site.id, kind=kind, url_or_address=address,
                          secret=(secret or secrets.token_urlsafe(32)) if kind == "webhook"
                          else "",
                          events=",".join(parse_events(",".join(events))), created_at=now)
    session.add(target)
    session.commit()
    session.refresh(target)
    return target


def target_events(target: NotifyTarget) -> tuple[str, ...]:
    return tuple(e for e in target.events.split(",") if e)


def targets_of(session: Session, site: Site) -> list[NotifyTarget]:
    return list(session.exec(select(NotifyTarget).where(NotifyTarget.site_id == site.id)
                             .order_by(col(NotifyTarget.id))).all())


def _sites_wanting(session: Session, event: str) -> list[Site]:
    targets = session.exec(select(NotifyTarget).where(col(NotifyTarget.disabled).is_(False)))
    ids = {t.site_id for t in targets if event in target_events(t)}
    if not ids:
        return []
    return list(session.exec(select(Site).where(col(Site.id).in_(ids))
                             .order_by(col(Site.name))).all())


# --- payloads ------------------------------------------------------------------------------

def site_path(site: str, *rest: str) -> str:
    return "/".join(["/sites", quote(site, safe=""), *(quote(p, safe="") for p in rest)])


def _envelope(kind: str, site: str, occurred_at: datetime) -> dict[str, Any]:
    return {"event": kind, "site": site, "occurred_at": occurred_at.isoformat()}


def verdict_payload(site: str, verdict: ProfileVerdict, old: str,
                    now: datetime) -> dict[str, Any]:
    """The profile's old and new status, the requirements that fail or warn (each with
    its status, reason and remediation) and the report's link path."""
    failing = [{"id": r.requirement.id, "title": r.requirement.title,
                "severity": r.requirement.severity, "status": r.status, "reason": r.reason,
                "remediation": r.remediation}
               for r in verdict.requirements if r.status in NOT_PASSING]
    return {**_envelope("verdict_changed", site, now), "profile": verdict.profile.id,
            "profile_title": verdict.profile.title, "old_status": old,
            "new_status": verdict.status, "failing_requirements": failing,
            "link": site_path(site, "report")}


def silent_payload(site: str, room: str, agent: Agent, since: datetime) -> dict[str, Any]:
    return {**_envelope("agent_silent", site, since), "agent_id": agent.id, "room": room,
            "agent_version": agent.agent_version,
            "last_seen": agent.last_seen.isoformat() if agent.last_seen else None,
            "link": site_path(site, "rooms", room)}


def flag_payload(site: str, room: str, flag: Flag) -> dict[str, Any]:
    return {**_envelope("flag_raised", site, flag.created_at), "room": room,
            "flag_id": flag.id, "note": flag.note, "source": flag.source,
            "burst_job_id": flag.job_id, "link": site_path(site, "rooms", room)}


def trial_event(site: Site, target_id: int, now: datetime) -> Event:
    """What ``notify test`` sends: says only that it is a test."""
    assert site.id is not None
    payload = {**_envelope(TEST_EVENT, site.name, now), "target_id": target_id,
               "message": "a test notification from classprobe; no action is needed",
               "link": site_path(site.name)}
    return Event(TEST_EVENT, site.id, now, now, payload)


# --- detection -----------------------------------------------------------------------------

def _verdicts(session: Session, site: Site, now: datetime) -> tuple[ProfileVerdict, ...]:
    try:
        return readiness_report(session, site.name, None, None, now).verdicts
    except (ProfileError, SiteError) as exc:
        log.warning("notifications: cannot judge site %r: %s", site.name, exc)
        return ()


def _verdict_events(session: Session, site: Site, verdicts: Sequence[ProfileVerdict],
                    now: datetime) -> list[Event]:
    assert site.id is not None
    events = []
    for verdict in verdicts:
        pid, new = verdict.profile.id, verdict.status
        state = session.get(VerdictState, (site.id, pid))
        if state is None:
            session.add(VerdictState(site_id=site.id, profile_id=pid, status=new,
                                     changed_at=now))
            continue
        old = state.status
        if old == new:
            continue
        swapped = session.exec(
            update(VerdictState)
            .where(col(VerdictState.site_id) == site.id, col(VerdictState.profile_id) == pid,
                   col(VerdictState.status) == old)
            .values(status=new, changed_at=now)).rowcount
        if swapped == 1:  # else another process reported this change
            events.append(Event("verdict_changed", site.id, now, now,
                                verdict_payload(site.name, verdict, old, now)))
    return events


def silent_since(agent: Agent) -> datetime:
    """When the agent became silent: :data:`AT_RISK_WITHIN` after it was last seen (an
    agent never seen is silent from its enrolment)."""
    return agent.created_at if agent.last_seen is None else agent.last_seen + AT_RISK_WITHIN


def _silent_events(session: Session, site: Site, now: datetime) -> list[Event]:
    assert site.id is not None
    rows = session.exec(select(Agent, Room.name).join(Room, col(Room.id) == Agent.room_id)
                        .where(Agent.site_id == site.id).order_by(col(Agent.created_at))).all()
    reported = set(session.exec(
        select(SilentAgent.agent_id).join(Agent, col(Agent.id) == SilentAgent.agent_id)
        .where(Agent.site_id == site.id)).all())
    events, back = [], []
    for agent, room in rows:
        silent = agent_state(agent.last_seen, agent.revoked, now) == "silent"
        if silent and agent.id not in reported:
            session.add(SilentAgent(agent_id=agent.id, reported_at=now))
            since = silent_since(agent)
            events.append(Event("agent_silent", site.id, since, now,
                                silent_payload(site.name, room, agent, since)))
        elif not silent and agent.id in reported:
            back.append(agent.id)
    if back:
        session.exec(delete(SilentAgent).where(col(SilentAgent.agent_id).in_(back)))
    return events


def detect_events(session: Session, now: datetime) -> list[Event]:
    """Verdict changes and newly silent agents in the sites whose targets want them.

    Records the new state in the session (not committed: :func:`run_detection` commits it
    with the notifications, so a crash loses neither without the other). Every site is
    judged before the first state is written, so on SQLite the write lock is held only for
    the short writes, not while verdicts are computed."""
    judged = [(site, _verdicts(session, site, now))
              for site in _sites_wanting(session, "verdict_changed")]
    events = [e for site, verdicts in judged
              for e in _verdict_events(session, site, verdicts, now)]
    events += [e for site in _sites_wanting(session, "agent_silent")
               for e in _silent_events(session, site, now)]
    return events


# --- the outbox ----------------------------------------------------------------------------

def new_notification(target: NotifyTarget, event: Event) -> Notification:
    assert target.id is not None
    return Notification(target_id=target.id, event=event.kind, payload=event.payload,
                        created_at=event.detected_at, next_attempt_at=event.detected_at)


def enqueue(session: Session, event: Event) -> list[Notification]:
    """One notification per enabled target of the event's site that wants the event and
    existed when it happened (added to the session; the caller commits)."""
    targets = session.exec(select(NotifyTarget).where(
        NotifyTarget.site_id == event.site_id, col(NotifyTarget.disabled).is_(False),
        col(NotifyTarget.created_at) <= event.occurred_at).order_by(col(NotifyTarget.id)))
    out = [new_notification(t, event) for t in targets if event.kind in target_events(t)]
    session.add_all(out)
    return out


def enqueue_all(session: Session, events: Iterable[Event]) -> int:
    return sum(len(enqueue(session, e)) for e in events)


def run_detection(session: Session, now: datetime) -> int:
    """Detect, enqueue and commit; the number of notifications queued. When another
    process recorded the same state first, this round is rolled back (and the next one
    sees that process's state)."""
    try:
        queued = enqueue_all(session, detect_events(session, now))
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        log.info("notifications: another collector recorded this state first (%s)", exc.orig)
        return 0
    return queued


def enqueue_flag(session: Session, flag: Flag) -> None:
    """Queue ``flag_raised`` for a flag about to be committed (see the flags service)."""
    site, room = session.get(Site, flag.site_id), session.get(Room, flag.room_id)
    if site is None or room is None:
        raise NotifyError(f"flag {flag.id} names site {flag.site_id} / room {flag.room_id}, "
                          "which do not exist")
    enqueue(session, Event("flag_raised", flag.site_id, flag.created_at, flag.created_at,
                           flag_payload(site.name, room.name, flag)))

"""Detecting what to notify (verdict changes, silent agents, flags) and the outbox rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from collector.models import Agent, Notification, NotifyTarget, SilentAgent, VerdictState
from collector.services.flags import FlagRateLimited, raise_flag
from collector.services.notify import (
    EVENTS,
    NotifyError,
    add_target,
    check_address,
    detect_events,
    parse_events,
    run_detection,
)
from collector.services.profiles import add_profile, profile_registry
from collector.services.sites import get_site
from tests.collector.conftest import SITE, T0
from tests.collector.room_rows import new_agent, new_site
from tests.collector.test_campaigns import PROFILE_ID, PROFILE_TOML, add_latency

DAY = timedelta(days=1)
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        yield s


@pytest.fixture
def agent_id(session: Session) -> str:
    """An agent in Room 12 of the test site, last seen at T0."""
    return new_agent(session, new_site(session, SITE), "Room 12", T0)


def target(session: Session, events: list[str], created: datetime = T0 - DAY,
           site: str = SITE, address: str = HOOK) -> NotifyTarget:
    return add_target(session, get_site(session, site), "webhook", address, events,
                      "s" * 32, created)


def notifications(session: Session) -> list[Notification]:
    return list(session.exec(select(Notification).order_by(col(Notification.id))).all())


def changes(payloads: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(p["profile"], p["old_status"], p["new_status"]) for p in payloads]


# --- verdict_changed -----------------------------------------------------------------------

def test_a_verdict_change_is_detected_once(session: Session, agent_id: str) -> None:
    add_profile(session, PROFILE_TOML, "test-latency.toml")
    hook = target(session, ["verdict_changed"])
    target(session, ["flag_raised"])  # wants other events: gets nothing here

    assert detect_events(session, T0) == []  # the first evaluation only records
    session.commit()
    states = {s.profile_id: s.status for s in session.exec(select(VerdictState))}
    assert states == {pid: "unknown" for pid in profile_registry(session)}

    add_latency(session, agent_id, T0, range(110, 120))  # p50 114.5 ms: fails "< 100 ms"
    later = T0 + timedelta(hours=2)
    assert run_detection(session, later) == 2
    notes = notifications(session)
    assert [(n.target_id, n.event, n.created_at, n.next_attempt_at, n.attempts)
            for n in notes] == [(hook.id, "verdict_changed", later, later, 0)] * 2
    assert changes([n.payload for n in notes]) == [
        ("microsoft-teams-media", "unknown", "fail"), (PROFILE_ID, "unknown", "fail")]
    payload = notes[1].payload
    failing = payload.pop("failing_requirements")
    assert payload == {
        "event": "verdict_changed", "site": SITE, "occurred_at": later.isoformat(),
        "profile": PROFILE_ID, "profile_title": "Test latency", "old_status": "unknown",
        "new_status": "fail", "link": "/sites/Test%20School/report"}
    assert [(r["id"], r["title"], r["severity"], r["status"]) for r in failing] == [
        ("rtt", "TCP connect below 100 ms", "must", "fail")]
    assert "is 114.5 ms over 10 samples" in failing[0]["reason"]
    assert failing[0]["remediation"].startswith("In Room 12, the round-trip time")

    assert detect_events(session, later + timedelta(minutes=1)) == []  # no change: silence
    assert session.get(VerdictState, (1, PROFILE_ID)).status == "fail"  # type: ignore[union-attr]

    add_latency(session, agent_id, T0 + timedelta(hours=3), [50.0] * 20)  # p50 now 50 ms
    events = detect_events(session, later + timedelta(hours=2))
    assert changes([e.payload for e in events]) == [(PROFILE_ID, "fail", "pass")]
    assert events[0].payload["failing_requirements"] == []


def test_sites_without_a_target_for_verdicts_are_not_judged(session: Session,
                                                            agent_id: str) -> None:
    target(session, ["agent_silent", "flag_raised"])
    assert run_detection(session, T0) == 0
    assert session.exec(select(VerdictState)).all() == []


def test_a_disabled_target_gets_nothing(session: Session, agent_id: str) -> None:
    add_profile(session, PROFILE_TOML, "test-latency.toml")
    hook = target(session, ["verdict_changed"])
    run_detection(session, T0)
    hook.disabled = True
    session.add(hook)
    session.commit()
    add_latency(session, agent_id, T0, range(110, 120))
    assert run_detection(session, T0 + DAY) == 0
    assert notifications(session) == []


# --- agent_silent --------------------------------------------------------------------------

def seen(session: Session, agent_id: str, when: datetime) -> None:
    agent = session.get(Agent, agent_id)
    assert agent is not None
    agent.last_seen = when
    session.add(agent)
    session.commit()


def test_an_agent_going_silent_is_reported_once_per_silence(session: Session,
                                                            agent_id: str) -> None:
    hook = target(session, ["agent_silent"])
    assert run_detection(session, T0 + timedelta(hours=23)) == 0  # at-risk, not silent
    first = T0 + DAY + timedelta(seconds=1)
    assert run_detection(session, first) == 1
    assert run_detection(session, first + timedelta(hours=5)) == 0  # still the same silence
    [note] = notifications(session)
    assert (note.target_id, note.event, note.created_at) == (hook.id, "agent_silent", first)
    assert note.payload == {
        "event": "agent_silent", "site": SITE, "occurred_at": (T0 + DAY).isoformat(),
        "agent_id": agent_id, "room": "Room 12", "agent_version": "",
        "last_seen": T0.isoformat(), "link": "/sites/Test%20School/rooms/Room%2012"}

    back = T0 + 2 * DAY
    seen(session, agent_id, back)
    assert run_detection(session, back + timedelta(minutes=1)) == 0
    assert session.exec(select(SilentAgent)).all() == []  # the silence is over

    again = back + DAY + timedelta(seconds=1)
    assert run_detection(session, again) == 1
    assert [n.payload["occurred_at"] for n in notifications(session)] == [
        (T0 + DAY).isoformat(), (back + DAY).isoformat()]


def test_a_silence_older_than_the_target_is_recorded_not_sent(session: Session,
                                                              agent_id: str) -> None:
    target(session, ["agent_silent"], created=T0 + 3 * DAY)  # added long after the silence
    events = detect_events(session, T0 + 4 * DAY)
    assert [e.kind for e in events] == ["agent_silent"]
    session.rollback()
    assert run_detection(session, T0 + 4 * DAY) == 0
    assert [s.agent_id for s in session.exec(select(SilentAgent))] == [agent_id]
    assert notifications(session) == []


def test_revoked_agents_are_not_reported_silent(session: Session, agent_id: str) -> None:
    target(session, ["agent_silent"])
    agent = session.get(Agent, agent_id)
    assert agent is not None
    agent.revoked = True
    session.add(agent)
    session.commit()
    assert run_detection(session, T0 + 30 * DAY) == 0


# --- flag_raised ---------------------------------------------------------------------------

def test_a_flag_enqueues_flag_raised(session: Session, agent_id: str) -> None:
    hook = target(session, ["flag_raised"])
    target(session, ["verdict_changed"])
    agent = session.get(Agent, agent_id)
    assert agent is not None
    at = T0 + timedelta(minutes=5)
    flag, burst = raise_flag(session, agent.site_id, agent.room_id, " videos froze ", "web",
                             None, at)
    assert burst is not None
    [note] = notifications(session)
    assert (note.target_id, note.event, note.created_at, note.next_attempt_at) == (
        hook.id, "flag_raised", at, at)
    assert note.payload == {
        "event": "flag_raised", "site": SITE, "occurred_at": at.isoformat(),
        "room": "Room 12", "flag_id": flag.id, "note": "videos froze", "source": "web",
        "burst_job_id": burst.id, "link": "/sites/Test%20School/rooms/Room%2012"}

    with pytest.raises(FlagRateLimited):  # refused: no flag, so no notification
        raise_flag(session, agent.site_id, agent.room_id, "again", "web", None,
                   at + timedelta(minutes=1))
    assert len(notifications(session)) == 1


def test_flags_in_another_site_do_not_reach_this_sites_targets(session: Session,
                                                              agent_id: str) -> None:
    target(session, ["flag_raised"])
    other = session.get(Agent, new_agent(session, new_site(session, "Other School"),
                                         "Lab", T0))
    assert other is not None
    raise_flag(session, other.site_id, other.room_id, "", "agent", other.id, T0)
    assert notifications(session) == []


# --- targets -------------------------------------------------------------------------------

def test_events_and_addresses_are_checked() -> None:
    assert parse_events(None) == EVENTS
    assert parse_events(" flag_raised,verdict_changed ") == ("verdict_changed", "flag_raised")
    with pytest.raises(NotifyError, match=r"^unknown event 'verdict'; events: "
                                          r"verdict_changed, agent_silent, flag_raised$"):
        parse_events("flag_raised,verdict")
    with pytest.raises(NotifyError, match="^no events given"):
        parse_events(" , ")
    assert check_address("webhook", " https://hooks.example/x ") == "https://hooks.example/x"
    for bad in ("ftp://127.0.0.1/x", "http://", "127.0.0.1:8000/hook", "file:///etc/passwd"):
        with pytest.raises(NotifyError, match=f"^webhook URL '{bad}' is not an http"):
            check_address("webhook", bad)
    assert check_address("email", "it@school.example") == "it@school.example"
    for bad in ("it", "it@school", "a b@school.example", "it@school.example\nBcc: x@y.z"):
        with pytest.raises(NotifyError, match="is not of the form name@domain"):
            check_address("email", bad)
    with pytest.raises(NotifyError, match=r"^target kind 'sms' is not one of"):
        check_address("sms", "x")


def test_targets_get_a_random_secret_unless_given(session: Session, agent_id: str) -> None:
    site = get_site(session, SITE)
    made = add_target(session, site, "webhook", HOOK, EVENTS, None, T0)
    other = add_target(session, site, "webhook", HOOK, EVENTS, None, T0)
    assert len(made.secret) >= 40 and made.secret != other.secret
    mail = add_target(session, site, "email", "it@school.example", ["flag_raised"], None, T0)
    assert (mail.secret, mail.events) == ("", "flag_raised")
    with pytest.raises(NotifyError, match="^the webhook secret is 5 characters long; "
                                          "use at least 16$"):
        add_target(session, site, "webhook", HOOK, EVENTS, "short", T0)


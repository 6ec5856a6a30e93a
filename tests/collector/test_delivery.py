"""Delivering the outbox to a real local webhook receiver and a local SMTP server: the
signature, the retry schedule, giving up, e-mail, and the app's background loop."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from collector.app import create_app
from collector.models import Agent, Notification, NotifyTarget, utcnow
from collector.services import notify_loop
from collector.services.delivery import (
    BACKOFF,
    CLAIM_FOR,
    SMTP_NOT_CONFIGURED,
    claim,
    deliver_due,
)
from collector.services.flags import raise_flag
from collector.services.notify import EVENTS, Event, add_target, enqueue
from collector.services.sites import get_site
from collector.settings import Settings
from tests.collector.conftest import SITE, T0
from tests.collector.notify_receivers import http_receiver, smtp_receiver
from tests.collector.room_rows import new_agent, new_site

SECRET = "a-test-secret-of-32-characters!!"
PAYLOAD = {"event": "flag_raised", "site": SITE, "room": "Room 12", "note": "frozen – again",
           "link": "/sites/Test%20School/rooms/Room%2012"}


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as s:
        new_site(s, SITE)
        yield s


def queue(session: Session, kind: str, address: str, at: datetime = T0) -> Notification:
    """A target created before ``at`` and one flag_raised notification for it, due at ``at``."""
    site = get_site(session, SITE)
    assert site.id is not None
    target = add_target(session, site, kind, address, EVENTS, SECRET, at - timedelta(days=1))
    [note] = enqueue(session, Event("flag_raised", site.id, at, at, dict(PAYLOAD)))
    session.commit()
    session.refresh(note)
    assert target.id == note.target_id
    return note


def state(session: Session, note: Notification) -> tuple[Any, ...]:
    session.refresh(note)
    return note.attempts, note.next_attempt_at, note.delivered_at, note.last_error


def smtp_settings(port: int, **more: Any) -> Settings:
    values: dict[str, Any] = {"smtp_host": "127.0.0.1", "smtp_port": port,
                              "smtp_from": "classprobe@school.example", "smtp_starttls": False}
    return Settings(**{**values, **more})


# --- webhooks ------------------------------------------------------------------------------

def test_a_webhook_is_signed_and_delivered(session: Session) -> None:
    with http_receiver() as hook:
        note = queue(session, "webhook", hook.url)
        results = deliver_due(session, T0, Settings())
    assert [(i, o.delivered, o.detail) for i, o in results] == [(note.id, True, "HTTP 204")]
    assert state(session, note) == (1, None, T0, None)
    [got] = hook.received
    assert got.path == "/hook"
    assert json.loads(got.body) == PAYLOAD
    assert got.body == json.dumps(PAYLOAD, sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False).encode()
    assert (got.headers["content-type"], got.headers["x-classprobe-event"],
            got.headers["x-classprobe-delivery"]) == ("application/json", "flag_raised",
                                                      str(note.id))
    assert got.signed_by(SECRET)
    assert not got.signed_by("another secret of the same size")
    assert deliver_due(session, T0 + timedelta(days=1), Settings()) == []  # done: not resent


def test_failures_are_retried_on_the_backoff_schedule(session: Session) -> None:
    with http_receiver(fail_first=2) as hook:
        note = queue(session, "webhook", hook.url)
        first = deliver_due(session, T0, Settings())
        assert [o.detail for _, o in first] == [
            f"HTTP 503 from {hook.url}: receiver is failing on purpose"]
        assert state(session, note) == (1, T0 + BACKOFF[0], None, first[0][1].detail)
        assert deliver_due(session, T0 + BACKOFF[0] - timedelta(seconds=1), Settings()) == []
        second_at = T0 + BACKOFF[0]
        assert [o.delivered for _, o in deliver_due(session, second_at, Settings())] == [False]
        assert state(session, note)[:2] == (2, second_at + BACKOFF[1])
        third_at = second_at + BACKOFF[1]
        assert [o.delivered for _, o in deliver_due(session, third_at, Settings())] == [True]
    assert state(session, note)[:3] == (3, None, third_at)
    assert len(hook.received) == 3
    assert len({r.body for r in hook.received}) == 1  # the same body every time
    assert all(r.signed_by(SECRET) for r in hook.received)


def test_after_the_last_step_it_is_given_up_with_the_error_kept(session: Session) -> None:
    contract = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
                timedelta(hours=2), timedelta(hours=12))
    assert contract == BACKOFF
    with http_receiver(fail_first=100, fail_status=500) as hook:
        note = queue(session, "webhook", hook.url)
        now, schedule = T0, []
        for _ in range(6):
            assert [o.delivered for _, o in deliver_due(session, now, Settings())] == [False]
            _, nxt, _, _ = state(session, note)
            schedule.append(nxt)
            now = nxt or now
        assert deliver_due(session, now + timedelta(days=30), Settings()) == []
    at = T0 + timedelta(minutes=1)
    expected = [at, at + timedelta(minutes=5), at + timedelta(minutes=35),
                at + timedelta(minutes=35, hours=2), at + timedelta(minutes=35, hours=14), None]
    assert schedule == expected
    assert state(session, note) == (
        6, None, None, f"HTTP 500 from {hook.url}: receiver is failing on purpose")
    assert len(hook.received) == 6


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_refused_connection_is_a_failed_attempt(session: Session) -> None:
    note = queue(session, "webhook", f"http://127.0.0.1:{closed_port()}/hook")
    [(_, outcome)] = deliver_due(session, T0, Settings())
    assert not outcome.delivered and outcome.detail.startswith("ConnectError: ")
    assert state(session, note)[:2] == (1, T0 + BACKOFF[0])


def test_the_public_url_is_added_to_the_body(session: Session) -> None:
    with http_receiver() as hook:
        queue(session, "webhook", hook.url)
        deliver_due(session, T0, Settings(public_url="https://probe.school.example/"))
    [got] = hook.received
    assert json.loads(got.body) == {
        **PAYLOAD, "url": "https://probe.school.example/sites/Test%20School/rooms/Room%2012"}
    assert got.signed_by(SECRET)


def test_a_disabled_target_gives_its_notifications_up(session: Session) -> None:
    with http_receiver() as hook:
        note = queue(session, "webhook", hook.url)
        target = session.get(NotifyTarget, note.target_id)
        assert target is not None
        target.disabled = True
        session.add(target)
        session.commit()
        [(_, outcome)] = deliver_due(session, T0, Settings())
    assert outcome.detail == "target disabled"
    assert state(session, note) == (0, None, None, "target disabled")
    assert hook.received == []


def test_a_claimed_notification_is_not_sent_twice(session: Session) -> None:
    with http_receiver() as hook:
        note = queue(session, "webhook", hook.url)
        assert note.id is not None
        assert claim(session, note.id, T0, T0)  # as another collector process would
        assert not claim(session, note.id, T0, T0)  # read due at T0, but taken: no claim
        assert deliver_due(session, T0 + CLAIM_FOR - timedelta(seconds=1), Settings()) == []
        assert [o.delivered for _, o in deliver_due(session, T0 + CLAIM_FOR, Settings())] \
            == [True]  # the claimer died: retried after the claim ran out
    assert len(hook.received) == 1


# --- e-mail --------------------------------------------------------------------------------

def test_an_email_reaches_the_smtp_server(session: Session) -> None:
    with smtp_receiver() as smtp:
        note = queue(session, "email", "it@school.example")
        [(_, outcome)] = deliver_due(session, T0, smtp_settings(smtp.port))
    assert (outcome.delivered, outcome.detail) == (True, f"accepted by 127.0.0.1:{smtp.port}")
    assert state(session, note) == (1, None, T0, None)
    [mail] = smtp.mails
    assert (mail.sender, mail.recipients) == ("classprobe@school.example",
                                              ("it@school.example",))
    message = mail.message
    assert (message["From"], message["To"], message["Subject"],
            message["X-Classprobe-Event"]) == (
        "classprobe@school.example", "it@school.example",
        "[classprobe] Test School: a problem was flagged in Room 12", "flag_raised")
    assert message.get_content().replace("\r\n", "\n") == (
        "event: flag_raised\nsite: Test School\nroom: Room 12\nnote: frozen – again\n"
        "link: /sites/Test%20School/rooms/Room%2012\n")


def test_email_without_smtp_settings_fails_clearly(session: Session) -> None:
    note = queue(session, "email", "it@school.example")
    [(_, outcome)] = deliver_due(session, T0, Settings())
    assert outcome.detail == SMTP_NOT_CONFIGURED
    assert SMTP_NOT_CONFIGURED.startswith("SMTP not configured")
    assert state(session, note) == (1, T0 + BACKOFF[0], None, SMTP_NOT_CONFIGURED)


def test_starttls_refused_by_the_server_is_a_failure(session: Session) -> None:
    with smtp_receiver() as smtp:
        note = queue(session, "email", "it@school.example")
        [(_, outcome)] = deliver_due(session, T0, smtp_settings(smtp.port,
                                                                smtp_starttls=True))
    assert outcome.detail == (f"SMTP 127.0.0.1:{smtp.port}: SMTPNotSupportedError: "
                              "STARTTLS extension not supported by server.")
    assert state(session, note)[:2] == (1, T0 + BACKOFF[0])
    assert smtp.mails == []


# --- the background loop -------------------------------------------------------------------

def loop_settings(tmp_path: Path, interval: float) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/loop.db", data_dir=tmp_path,
                    notify_interval_s=interval)


def flag_now(engine: Engine, hook_url: str) -> None:
    """A site with an agent and a webhook target for flags, then a flag raised now."""
    with Session(engine) as s:
        agent = s.get(Agent, new_agent(s, new_site(s, SITE), "Room 12", utcnow()))
        assert agent is not None
        add_target(s, get_site(s, SITE), "webhook", hook_url, ["flag_raised"], SECRET,
                   utcnow() - timedelta(minutes=1))
        raise_flag(s, agent.site_id, agent.room_id, "no sound", "agent", agent.id, utcnow())


def test_the_background_loop_delivers_within_seconds(tmp_path: Path) -> None:
    app = create_app(loop_settings(tmp_path, 0.2))
    with http_receiver() as hook, TestClient(app):
        flag_now(app.state.engine, hook.url)
        got = hook.wait_for(1, timeout_s=3.0)
    assert [json.loads(r.body)["note"] for r in got] == ["no sound"]
    assert got[0].signed_by(SECRET)


def test_a_failing_round_is_logged_and_the_loop_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def broken(session: Session, now: datetime) -> int:
        calls.append(now)
        raise RuntimeError("database on fire")

    monkeypatch.setattr(notify_loop, "run_detection", broken)
    app = create_app(loop_settings(tmp_path, 0.1))
    with caplog.at_level(logging.ERROR, logger="collector.services.notify_loop"), \
            http_receiver() as hook, TestClient(app) as client:
        flag_now(app.state.engine, hook.url)
        got = hook.wait_for(1, timeout_s=3.0)  # delivery still runs after detection fails
        assert client.get("/login").status_code == 200  # the app still answers
    assert len(got) == 1 and len(calls) >= 1
    assert "notifications: detecting events failed; trying again next round" in caplog.text
    assert "RuntimeError: database on fire" in caplog.text


def test_interval_zero_runs_no_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = []
    monkeypatch.setattr(notify_loop, "notify_loop",
                        lambda *args: started.append(args))  # would fail when awaited
    app = create_app(loop_settings(tmp_path, 0))
    with TestClient(app) as client:
        assert client.get("/login").status_code == 200
    assert started == []

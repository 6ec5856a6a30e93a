"""Deliver the outbox (:class:`~collector.models.Notification`): webhooks and e-mail.

Webhook: ``POST`` of the payload as compact JSON (sorted keys, UTF-8) with the headers
``X-Classprobe-Event: <event>``, ``X-Classprobe-Delivery: <notification id>`` and
``X-Classprobe-Signature: sha256=<hex HMAC-SHA256 of the exact body, key = the target's
secret>``; a receiver recomputes the HMAC over the raw body it got. 2xx within
:data:`TIMEOUT_S` = delivered; anything else (other status, redirect, timeout, refused
connection) is a failed attempt.

E-mail: :mod:`smtplib` to ``Settings.smtp_host:smtp_port`` from ``smtp_from``, STARTTLS
when ``smtp_starttls``, login when ``smtp_user`` is set. Without host or From the attempt
fails with "SMTP not configured".

A failed attempt is retried after :data:`BACKOFF` (1 min, 5 min, 30 min, 2 h, 12 h after
attempts 1..5); when attempt 6 fails the notification is given up, its ``last_error``
kept. Each due notification is first claimed with a compare-and-set update that moves its
``next_attempt_at`` :data:`CLAIM_FOR` ahead, so two collector processes never both send
it, and one that dies mid-send leaves it to be retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import httpx
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from collector.models import Notification, NotifyTarget
from collector.settings import Settings

BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
           timedelta(hours=2), timedelta(hours=12))
TIMEOUT_S = 10.0
CLAIM_FOR = timedelta(minutes=2)
BATCH = 100
MAX_ERROR = 500
SMTP_NOT_CONFIGURED = ("SMTP not configured: set CLASSPROBE_SMTP_HOST and "
                       "CLASSPROBE_SMTP_FROM to send e-mail")
USER_AGENT = "classprobe-collector/0.1"


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    detail: str
    """``HTTP 204``, ``accepted by host:port``, or what went wrong."""


# --- sending -------------------------------------------------------------------------------

def body_of(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``body`` keyed with the target's secret."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def with_url(payload: Mapping[str, Any], public_url: str) -> dict[str, Any]:
    """The payload, plus ``url`` (the collector's address + ``link``) when it is known."""
    out = dict(payload)
    if public_url and isinstance(payload.get("link"), str):
        out["url"] = public_url.rstrip("/") + payload["link"]
    return out


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR else text[:MAX_ERROR - 1] + "…"


def send_webhook(client: httpx.Client, target: NotifyTarget, event: str,
                 payload: Mapping[str, Any], delivery_id: int | None) -> Outcome:
    body = body_of(payload)
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "X-Classprobe-Event": event,
               "X-Classprobe-Signature": signature(target.secret, body)}
    if delivery_id is not None:
        headers["X-Classprobe-Delivery"] = str(delivery_id)
    try:
        response = client.post(target.url_or_address, content=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Outcome(False, _short(f"{type(exc).__name__}: {exc}"
                                     if str(exc) else type(exc).__name__))
    if 200 <= response.status_code < 300:
        return Outcome(True, f"HTTP {response.status_code}")
    return Outcome(False, _short(f"HTTP {response.status_code} from "
                                 f"{target.url_or_address}: {response.text}"))


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def email_subject(event: str, payload: Mapping[str, Any]) -> str:
    site, room = payload.get("site", "?"), payload.get("room", "?")
    subject = {
        "verdict_changed": f"{site}: {payload.get('profile')} is now "
                           f"{payload.get('new_status')} (was {payload.get('old_status')})",
        "agent_silent": f"{site}: an agent in {room} has gone silent",
        "flag_raised": f"{site}: a problem was flagged in {room}",
        "test": f"{site}: test notification (no action needed)",
    }.get(event, f"{site}: {event.replace('_', ' ')}")
    return _one_line(f"[classprobe] {subject}")


def email_text(payload: Mapping[str, Any]) -> str:
    """Every field of the payload, one per line; lists of requirements indented."""
    lines = []
    for key, value in payload.items():
        if isinstance(value, list):
            lines.append(f"{key.replace('_', ' ')}:" + ("" if value else " none"))
            for item in value:
                if isinstance(item, Mapping):
                    lines.append(f"  - {item.get('id')} ({item.get('status')}): "
                                 f"{item.get('title')}")
                    lines += [f"      {k}: {v}" for k, v in item.items()
                              if k not in ("id", "status", "title") and v]
                else:
                    lines.append(f"  - {item}")
        else:
            lines.append(f"{key.replace('_', ' ')}: {'' if value is None else value}")
    return "\n".join(lines) + "\n"


def send_email(settings: Settings, target: NotifyTarget, event: str,
               payload: Mapping[str, Any]) -> Outcome:
    if not settings.smtp_host or not settings.smtp_from:
        return Outcome(False, SMTP_NOT_CONFIGURED)
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = target.url_or_address
    message["Subject"] = email_subject(event, payload)
    message["X-Classprobe-Event"] = event
    message.set_content(email_text(payload))
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_S) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                password = settings.smtp_password
                smtp.login(settings.smtp_user,
                           password.get_secret_value() if password else "")
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        return Outcome(False, _short(f"SMTP {where}: {type(exc).__name__}: {exc}"))
    return Outcome(True, f"accepted by {where}")


def new_client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT_S, follow_redirects=False)


def send(settings: Settings, client: httpx.Client, target: NotifyTarget, event: str,
         payload: Mapping[str, Any], delivery_id: int | None = None) -> Outcome:
    """One attempt to deliver ``payload`` to ``target`` (no database change)."""
    payload = with_url(payload, settings.public_url)
    if target.kind == "webhook":
        return send_webhook(client, target, event, payload, delivery_id)
    if target.kind == "email":
        return send_email(settings, target, event, payload)
    return Outcome(False, f"unknown target kind {target.kind!r}")


# --- the outbox ----------------------------------------------------------------------------

def next_attempt(attempts: int, now: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed attempts; None = give up."""
    return now + BACKOFF[attempts - 1] if 1 <= attempts <= len(BACKOFF) else None


def claim(session: Session, note_id: int, due_at: datetime, now: datetime) -> bool:
    """Take the notification for this process: only if it is still due at ``due_at``
    (as it was read), move that to ``now + CLAIM_FOR``; False = another process has it."""
    claimed = session.exec(
        update(Notification)
        .where(col(Notification.id) == note_id, col(Notification.delivered_at).is_(None),
               col(Notification.next_attempt_at) == due_at)
        .values(next_attempt_at=now + CLAIM_FOR)).rowcount
    session.commit()
    return claimed == 1


def record(note: Notification, outcome: Outcome, now: datetime) -> None:
    """Count the attempt: delivered, retried later, or given up."""
    note.attempts += 1
    if outcome.delivered:
        note.delivered_at, note.next_attempt_at = now, None
    else:
        note.last_error = outcome.detail
        note.next_attempt_at = next_attempt(note.attempts, now)


def deliver_due(session: Session, now: datetime, settings: Settings,
                client: httpx.Client | None = None,
                stop: threading.Event | None = None) -> list[tuple[int, Outcome]]:
    """Try every notification due at ``now`` (at most :data:`BATCH`); each one's id and
    outcome. ``stop`` set (the app shutting down) ends the round between notifications.
    Attempts are recorded at ``now``; each claim runs from the time it is made."""
    due = session.exec(select(Notification.id, Notification.next_attempt_at).where(
        col(Notification.delivered_at).is_(None), col(Notification.next_attempt_at) <= now)
        .order_by(col(Notification.next_attempt_at), col(Notification.id)).limit(BATCH)).all()
    results: list[tuple[int, Outcome]] = []
    if not due:
        return results
    own, started = client is None, time.monotonic()
    http = new_client() if client is None else client
    try:
        for note_id, due_at in due:
            if stop is not None and stop.is_set():
                break
            assert note_id is not None and due_at is not None
            elapsed = timedelta(seconds=time.monotonic() - started)  # slow sends before
            if not claim(session, note_id, due_at, now + elapsed):
                continue  # another process took it
            note = session.get_one(Notification, note_id)
            target = session.get(NotifyTarget, note.target_id)
            if target is None or target.disabled:
                outcome = Outcome(False, "target disabled")
                note.last_error, note.next_attempt_at = outcome.detail, None
            else:
                outcome = send(settings, http, target, note.event, note.payload, note.id)
                record(note, outcome, now)
            session.add(note)
            session.commit()
            results.append((note_id, outcome))
    finally:
        if own:
            http.close()
    return results


@dataclass(frozen=True)
class OutboxCounts:
    pending: int
    delivered: int
    failed: int
    last_error: str | None
    """The newest error among the target's pending and given-up notifications."""


def outbox_counts(session: Session, target_id: int) -> OutboxCounts:
    rows = session.exec(
        select(col(Notification.delivered_at).is_not(None),
               col(Notification.next_attempt_at).is_not(None), func.count())
        .where(Notification.target_id == target_id)
        .group_by(col(Notification.delivered_at).is_not(None),
                  col(Notification.next_attempt_at).is_not(None))).all()
    counts = {"pending": 0, "delivered": 0, "failed": 0}
    for delivered, waiting, n in rows:
        counts["delivered" if delivered else "pending" if waiting else "failed"] += int(n)
    last = session.exec(
        select(Notification.last_error)
        .where(Notification.target_id == target_id, col(Notification.delivered_at).is_(None),
               col(Notification.last_error).is_not(None))
        .order_by(col(Notification.id).desc())).first()
    return OutboxCounts(counts["pending"], counts["delivered"], counts["failed"], last)

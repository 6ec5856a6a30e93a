"""Drains the spool to the collector in batches, through an injected ``httpx.Client``.

A report leaves the spool only when the collector lists its id as ``accepted`` or
``duplicates``. How each answer is handled:

- 200: the listed ids are removed; any id the collector did not list stays pending.
- 401 / 403: the credential is refused; everything stays pending (re-enrol the agent).
- 413: the batch is too big; it is retried in halves, and a single report that is still
  too big is quarantined.
- 429, 5xx, connection errors, timeouts: everything stays; the caller backs off, for at
  least the ``Retry-After`` the collector sent with a 429 or 503 (seconds or an HTTP date,
  at most :data:`MAX_RETRY_AFTER_S`: a broken proxy must not silence the agent for days).
- any other 4xx: the input itself is bad. A batch is split until the bad report is alone,
  and that report is quarantined to ``spool/rejected/`` with the collector's reason (not
  retried forever, not deleted silently).

:class:`Backoff` is exponential backoff with "full jitter": the n-th consecutive failure
waits ``uniform(0, min(cap, base * 2**n))`` seconds.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from agent.spool import CorruptReport, Spool, Spooled
from agent.wire import SCHEMA_VERSION

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"
MAX_RETRY_AFTER_S = 6 * 3600.0
_DELAY_SECONDS = re.compile(r"[0-9]+")


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (RFC 9110: delay-seconds or an
    HTTP date), capped at :data:`MAX_RETRY_AFTER_S`; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):  # ASCII digits only: str.isdigit() takes "²" too
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_S)


class Backoff:
    def __init__(self, base_s: float, cap_s: float,
                 uniform: Callable[[float, float], float] = random.uniform) -> None:
        if base_s <= 0 or cap_s < base_s:
            raise ValueError(f"backoff needs 0 < base_s <= cap_s, got {base_s}, {cap_s}")
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0
        self._uniform = uniform

    def ceiling(self) -> float:
        """The upper bound of the next delay."""
        return min(self.cap_s, self.base_s * 2 ** min(self.failures, 62))

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next try."""
        delay = self._uniform(0.0, self.ceiling())
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


@dataclass
class UploadOutcome:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    pending: int = 0
    error: str | None = None
    """Why the drain stopped early (collector down, credential refused...)."""
    retryable: bool = True
    retry_after_s: float | None = None
    """What the collector's ``Retry-After`` asked for (429/503), capped; None if nothing."""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def _detail(response: httpx.Response) -> str:
    """The collector's ``detail`` and ``problems`` (or the start of the body)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        parts = [str(body.get("detail", ""))]
        problems = body.get("problems")
        if isinstance(problems, list):
            parts += [str(p) for p in problems]
        return "; ".join(p for p in parts if p) or json.dumps(body)[:300]
    return json.dumps(body)[:300]


class _Stop(Exception):  # noqa: N818 - internal control flow, carries the outcome reason
    def __init__(self, message: str, retryable: bool,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Uploader:
    def __init__(self, client: httpx.Client, spool: Spool, credential: str,
                 batch_size: int = 20) -> None:
        self.client = client
        self.spool = spool
        self.credential = credential
        self.batch_size = max(1, batch_size)

    def drain(self) -> UploadOutcome:
        """Send everything pending, oldest first; stop at the first transient error."""
        outcome = UploadOutcome()
        try:
            while True:
                items = self._readable(self.spool.pending()[: self.batch_size], outcome)
                if not items:
                    break
                if self._send(items, outcome) == 0:
                    outcome.notes.append("collector stored none of the batch; stopping")
                    break
        except _Stop as stop:
            outcome.error = str(stop)
            outcome.retryable = stop.retryable
            outcome.retry_after_s = stop.retry_after
        outcome.pending = len(self.spool.pending())
        return outcome

    def _readable(self, items: list[Spooled], outcome: UploadOutcome) -> list[Spooled]:
        good = []
        for item in items:
            try:
                self.spool.load(item)
            except CorruptReport as exc:
                self.spool.quarantine(item.report_id, f"corrupt spool file: {exc}")
                outcome.quarantined += 1
                continue
            good.append(item)
        return good

    def _send(self, items: list[Spooled], outcome: UploadOutcome) -> int:
        """POST ``items``; returns how many left the spool. Raises _Stop when to give up."""
        import httpx

        reports: list[Any] = [self.spool.load(i) for i in items]
        body = {"schema_version": SCHEMA_VERSION, "reports": reports}
        try:
            response = self.client.post(
                REPORTS_PATH, json=body,
                headers={"Authorization": f"Bearer {self.credential}"})
        except httpx.HTTPError as exc:
            raise _Stop(f"collector unreachable: {type(exc).__name__}: {exc}", True) from exc
        outcome.sent += len(items)
        status = response.status_code
        if status == 200:
            return self._stored(response, items, outcome)
        detail = _detail(response)
        if status in (401, 403):
            raise _Stop(f"collector refused the agent credential ({status}: {detail}); "
                        "reports stay spooled; re-enrol with `classprobe agent enroll`", False)
        if status == 429 or status >= 500:
            wait = retry_after_s(response.headers.get("retry-after")) \
                if status in (429, 503) else None
            asked = f" (Retry-After {wait:.0f} s)" if wait is not None else ""
            raise _Stop(f"collector answered {status}: {detail}{asked}", True, wait)
        if len(items) > 1:  # find the bad report(s): split and retry
            half = len(items) // 2
            return self._send(items[:half], outcome) + self._send(items[half:], outcome)
        reason = f"collector rejected the report with HTTP {status}: {detail}"
        self.spool.quarantine(items[0].report_id, reason)
        outcome.quarantined += 1
        return 1

    def _stored(self, response: httpx.Response, items: list[Spooled],
                outcome: UploadOutcome) -> int:
        try:
            body = response.json()
            accepted = [str(x) for x in body["accepted"]]
            duplicates = [str(x) for x in body["duplicates"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise _Stop(f"collector answered 200 without an ingest result: {exc}", True) \
                from exc
        sent_ids = {i.report_id for i in items}
        removed = 0
        for report_id in accepted + duplicates:
            if report_id in sent_ids and self.spool.remove(report_id):
                removed += 1
        outcome.accepted += len([r for r in accepted if r in sent_ids])
        outcome.duplicates += len([r for r in duplicates if r in sent_ids])
        missing = sent_ids - set(accepted) - set(duplicates)
        if missing:
            outcome.notes.append(f"collector did not confirm {len(missing)} report(s); "
                                 "they stay spooled")
        return removed

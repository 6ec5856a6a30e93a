"""Store validated uploads: a group of them in one transaction, idempotent on ``report_id``.

An upload is one agent's report batch. :func:`store_group` writes several uploads (perhaps
of different agents and sites: whatever waited for a writer,
:mod:`collector.services.ingest_queue`) in one transaction, with one round of reads before
the rows and one commit, where each upload used to pay for its own; :func:`store_batch`
is a group of one. Each upload gets the answer it would have got alone.

A report whose id is already stored, or comes earlier in the group, is a duplicate (a
retry from the agent's spool, or a replica that raced us) and is skipped. When two
uploads of the same report run at once, the loser's commit fails on the unique
``report_id``; the whole group is rolled back and tried again, and the raced report then
shows up as a duplicate — never as an error. A group whose pooled connection the database
had dropped (a restart), or that the database chose as a deadlock's victim, is tried
again. A group that fails otherwise is written again upload by upload, so one upload the
database refuses costs no other upload its answer; when the database is unavailable every
upload of the group gets that error at once (a 503: the agents keep their spool).

Each measurement is tagged with the timetable period its probe run started in
(``period``/``in_lesson``; None/None when the site has no timetable). A site's timetable
is read once per group. A report's ``job_id`` that is not a job of the agent's own room is
dropped (the report is still stored: data is never lost) and logged as a warning, so a
stray id cannot pollute another room's test. The agent's clock offset is taken from the
newest report that carries one.

The reads go through :mod:`collector.services.ingest_read` (one statement per group on
PostgreSQL), the rows through :mod:`collector.services.ingest_write` (raw DBAPI:
``executemany`` on SQLite, ``COPY`` on PostgreSQL); one process's SQLite writers queue on
a lock (:func:`_one_writer`).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session

from agent.timetable import Timetable, TimetableError, locate
from agent.wire import IngestResponse, Report, ReportBatch
from collector.services.enrolment import AgentIdentity
from collector.services.ingest_read import BatchQuery
from collector.services.ingest_write import ReportRows, RunRows, writer_for
from collector.services.metrics import count_ingest
from collector.services.timetables import parsed_timetable

ATTEMPTS = 3
RETRIED_SQLSTATES = frozenset({"40P01", "40001"})
"""A deadlock's victim, a serialization failure: the database asks for the transaction to
be tried again."""
log = logging.getLogger("classprobe.collector.ingest")
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()


@dataclass(frozen=True)
class Upload:
    """One agent's validated report batch, as it came in one request."""

    who: AgentIdentity
    batch: ReportBatch


@dataclass(frozen=True)
class BatchContext:
    """What every report of one batch is checked and tagged against (read once)."""

    timetable: Timetable | None
    room_job_ids: frozenset[str]

    def tag(self, started_at: datetime) -> tuple[str | None, bool | None]:
        """(period, in_lesson) at ``started_at``; (None, None) without a timetable."""
        if self.timetable is None:
            return None, None
        slot = locate(self.timetable, started_at)
        return slot.period, slot.in_lesson


def _site_timetable(document: str | None, site_id: int) -> Timetable | None:
    if document is None:
        return None
    try:
        return parsed_timetable(document, site_id)
    except TimetableError as exc:  # stored when valid; never refuse data because of it
        log.error("site %d: stored timetable no longer parses (%s); measurements are "
                  "stored untagged", site_id, exc)
        return None


def _job_id(report: Report, who: AgentIdentity, ctx: BatchContext) -> str | None:
    if report.job_id is None or report.job_id in ctx.room_job_ids:
        return report.job_id
    log.warning("report %s from agent %s: job_id %r is not a job of its room (room id %d); "
                "stored without the job_id", report.report_id, who.agent_id, report.job_id,
                who.room_id)
    return None


def _rows(who: AgentIdentity, reports: list[Report], now: datetime, ctx: BatchContext,
          stamp: Callable[[datetime], Any]) -> list[ReportRows]:
    """The new reports as rows for :mod:`collector.services.ingest_write`, each
    measurement tagged with the period its probe run started in."""
    received = stamp(now)
    out = []
    for r in reports:
        rows = ReportRows((str(r.report_id), who.agent_id, stamp(r.created_at), received,
                           r.schema_version, r.agent_version, r.spool_dropped, r.trigger,
                           _job_id(r, who, ctx), r.clock_offset_s))
        for result in r.results:
            started = stamp(result.started_at)
            period, in_lesson = ctx.tag(result.started_at) if result.measurements else (
                None, None)
            rows.runs.append(RunRows(
                (result.probe, result.target, result.status, result.reason, started,
                 stamp(result.finished_at)),
                (who.agent_id, who.site_id, who.room_id, started, result.probe, result.target,
                 period, in_lesson),
                [(m.metric, m.value, m.text, m.unit, m.method, m.stat, m.samples)
                 for m in result.measurements]))
        out.append(rows)
    return out


def _agent_values(batch: ReportBatch, now: datetime) -> dict[str, Any]:
    """The agent was seen now; its version and clock offset as its newest report says."""
    values: dict[str, Any] = {"last_seen": now}
    newest = batch.reports[-1].agent_version
    if newest:
        values["agent_version"] = newest
    offsets = [r for r in batch.reports if r.clock_offset_s is not None]
    if offsets:
        values["clock_offset_s"] = max(offsets, key=lambda r: r.created_at).clock_offset_s
    return values


def _query(upload: Upload, now: datetime) -> BatchQuery:
    who, batch = upload.who, upload.batch
    return BatchQuery(
        who.agent_id, who.site_id, who.room_id, [str(r.report_id) for r in batch.reports],
        sorted({r.job_id for r in batch.reports if r.job_id is not None}),
        _agent_values(batch, now), sum(len(r.results) for r in batch.reports))


def _store_once(session: Session, uploads: list[Upload],
                now: datetime) -> list[IngestResponse]:
    conn = session.connection()
    writer = writer_for(conn)
    queries = [_query(upload, now) for upload in uploads]
    seen: set[str] = set()  # stored, or earlier in the group
    rows: list[ReportRows] = []
    responses = []
    for upload, query, reads in zip(uploads, queries, writer.read(conn, queries),
                                    strict=True):
        seen.update(reads.known)
        accepted: list[str] = []
        duplicates: list[str] = []
        new: list[Report] = []
        for report, rid in zip(upload.batch.reports, query.report_ids, strict=True):
            if rid in seen:
                duplicates.append(rid)
                continue
            seen.add(rid)  # the same id twice: stored once
            new.append(report)
            accepted.append(rid)
        if new:
            who = upload.who
            ctx = BatchContext(_site_timetable(reads.timetable, who.site_id), reads.room_jobs)
            rows.extend(_rows(who, new, now, ctx, writer.stamp))
        responses.append(IngestResponse(accepted=accepted, duplicates=duplicates))
    if rows:
        writer.write(conn, rows)
    session.commit()
    writer.committed()
    return responses


def _one_writer(engine: Engine) -> AbstractContextManager[object]:
    """SQLite writes one transaction at a time: this process's threads queue on a lock
    rather than on SQLite's busy handler, which polls with sleeps of up to 100 ms while
    the database may already be free (load benchmark, 1 worker, 64 uploads in flight: p99
    5.4-8.8 s -> 2.1-3.9 s at the same reports/s and CPU per report). Other databases:
    no lock."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITERS_GUARD:
        lock = _SQLITE_WRITERS.get(engine)
        if lock is None:
            lock = _SQLITE_WRITERS[engine] = threading.Lock()
    return lock


def _retried(exc: DBAPIError) -> bool:
    """The database asks for the transaction again, or dropped the pooled connection."""
    return exc.connection_invalidated or getattr(
        exc.orig, "sqlstate", None) in RETRIED_SQLSTATES


def _write_group(engine: Engine, uploads: list[Upload], now: datetime) -> list[IngestResponse]:
    """Every upload in one transaction, tried up to :data:`ATTEMPTS` times."""
    for attempt in range(1, ATTEMPTS + 1):
        with _one_writer(engine), Session(engine) as session:
            try:
                responses = _store_once(session, uploads, now)
            except IntegrityError:
                session.rollback()
                if attempt == ATTEMPTS:
                    raise
                continue
            except DBAPIError as exc:
                if not _retried(exc) or attempt == ATTEMPTS:
                    raise
                continue  # the session's close rolls back what is left
        return responses
    raise AssertionError("unreachable")


def store_group(engine: Engine, uploads: list[Upload],
                now: datetime) -> list[IngestResponse | Exception]:
    """Each upload's answer, or the error that kept it from being stored: all of them in
    one transaction; if that fails, upload by upload (unless the database is unavailable,
    which no upload can help)."""
    try:
        responses = _write_group(engine, uploads, now)
    except Exception as exc:  # noqa: BLE001 - an upload's error is its answer
        if len(uploads) == 1 or isinstance(exc, OperationalError):
            return [exc] * len(uploads)
        log.warning("a group of %d uploads failed (%s: %s); storing them one by one",
                    len(uploads), type(exc).__name__, str(exc).splitlines()[0] if str(exc)
                    else "")
        return [store_group(engine, [upload], now)[0] for upload in uploads]
    # committed: the /metrics counters (outside the try: a committed group is never
    # written again, which would answer its new reports as duplicates)
    for upload, response in zip(uploads, responses, strict=True):
        count_ingest(engine, upload.batch, response)
    return list(responses)


def store_batch(engine: Engine, who: AgentIdentity, batch: ReportBatch,
                now: datetime) -> IngestResponse:
    """Store every new report of ``batch`` in one transaction; list the duplicates."""
    (answer,) = store_group(engine, [Upload(who, batch)], now)
    if isinstance(answer, Exception):
        raise answer
    return answer

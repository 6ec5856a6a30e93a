"""Store a validated batch: one transaction, idempotent on ``report_id``.

A report whose id is already stored is a duplicate (a retry from the agent's spool, or a
replica that raced us) and is skipped. When two uploads of the same report run at once,
the loser's commit fails on the unique ``report_id``; the whole batch is rolled back and
tried again, and the raced report then shows up as a duplicate — never as an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from agent.wire import IngestResponse, Report, ReportBatch
from collector.models import Agent, Measurement, ProbeRun
from collector.models import Report as ReportRow
from collector.services.enrolment import AgentIdentity

ATTEMPTS = 3


def existing_report_ids(session: Session, ids: Iterable[str]) -> set[str]:
    wanted = list(ids)
    if not wanted:
        return set()
    found = session.exec(select(ReportRow.report_id).where(col(ReportRow.report_id).in_(wanted)))
    return set(found.all())


def _add_report(session: Session, who: AgentIdentity, report: Report, now: datetime) -> None:
    row = ReportRow(report_id=str(report.report_id), agent_id=who.agent_id,
                    created_at=report.created_at, received_at=now,
                    schema_version=report.schema_version, agent_version=report.agent_version,
                    spool_dropped=report.spool_dropped)
    session.add(row)
    session.flush()
    assert row.id is not None
    for result in report.results:
        run = ProbeRun(report_pk=row.id, probe=result.probe, target=result.target,
                       status=result.status, reason=result.reason,
                       started_at=result.started_at, finished_at=result.finished_at)
        session.add(run)
        session.flush()
        assert run.id is not None
        session.add_all(
            Measurement(report_pk=row.id, probe_run_id=run.id, agent_id=who.agent_id,
                        site_id=who.site_id, room_id=who.room_id, time=result.started_at,
                        probe=result.probe, target=result.target, metric=m.metric,
                        value=m.value, text=m.text, unit=m.unit, method=m.method,
                        stat=m.stat, samples=m.samples)
            for m in result.measurements)


def _store_once(session: Session, who: AgentIdentity, batch: ReportBatch,
                now: datetime) -> IngestResponse:
    ids = [str(r.report_id) for r in batch.reports]
    seen = existing_report_ids(session, ids)
    accepted: list[str] = []
    duplicates: list[str] = []
    for report, rid in zip(batch.reports, ids, strict=True):
        if rid in seen:
            duplicates.append(rid)
            continue
        seen.add(rid)  # the same id twice in one batch: store it once
        _add_report(session, who, report, now)
        accepted.append(rid)
    agent = session.get(Agent, who.agent_id)
    if agent is not None:
        agent.last_seen = now
        newest = batch.reports[-1].agent_version
        agent.agent_version = newest or agent.agent_version
        session.add(agent)
    session.commit()
    return IngestResponse(accepted=accepted, duplicates=duplicates)


def store_batch(engine: Engine, who: AgentIdentity, batch: ReportBatch,
                now: datetime) -> IngestResponse:
    """Store every new report of ``batch`` in one transaction; list the duplicates."""
    for attempt in range(1, ATTEMPTS + 1):
        with Session(engine) as session:
            try:
                return _store_once(session, who, batch, now)
            except IntegrityError:
                session.rollback()
                if attempt == ATTEMPTS:
                    raise
    raise AssertionError("unreachable")

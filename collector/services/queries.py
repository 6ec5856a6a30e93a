"""Database reads that feed the pure services: a site's measurements and failed runs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, col, func, select

from collector.models import Agent, Measurement, ProbeRun, Report, Room, Site
from collector.services.rows import FailureRow, LatestRun, MeasurementRow

MAX_FAILURES = 2000


def measurement_rows(session: Session, site: Site, metrics: Iterable[str] | None = None,
                     since: datetime | None = None,
                     until: datetime | None = None) -> list[MeasurementRow]:
    """The site's measurements, oldest first; only ``metrics`` when given, and only
    those in ``[since, until)`` when either bound is given."""
    query = (
        select(Measurement, Room.name, Report)
        .join(Room, col(Room.id) == Measurement.room_id)
        .join(Report, col(Report.id) == Measurement.report_pk)
        .where(Measurement.site_id == site.id)
        .order_by(col(Measurement.time), col(Measurement.id))
    )
    if metrics is not None:
        query = query.where(col(Measurement.metric).in_(list(metrics)))
    if since is not None:
        query = query.where(col(Measurement.time) >= since)
    if until is not None:
        query = query.where(col(Measurement.time) < until)
    return [
        MeasurementRow(time=m.time, agent_id=m.agent_id, room=room, probe=m.probe,
                       target=m.target, metric=m.metric, value=m.value, unit=m.unit,
                       method=m.method, report_id=report.report_id, stat=m.stat,
                       samples=m.samples, text=m.text, period=m.period, in_lesson=m.in_lesson,
                       trigger=report.trigger, job_id=report.job_id)
        for m, room, report in session.exec(query).all()
    ]


def failure_rows(session: Session, site: Site, limit: int = MAX_FAILURES) -> list[FailureRow]:
    """The site's most recent probe runs that failed or were skipped, newest first."""
    query = (
        select(ProbeRun, Report.agent_id)
        .join(Report, col(Report.id) == ProbeRun.report_pk)
        .join(Agent, col(Agent.id) == Report.agent_id)
        .where(Agent.site_id == site.id, ProbeRun.status != "ok")
        .order_by(col(ProbeRun.finished_at).desc())
        .limit(limit)
    )
    return [
        FailureRow(time=run.finished_at, agent_id=agent_id, probe=run.probe, target=run.target,
                   status=run.status, reason=run.reason or "")
        for run, agent_id in session.exec(query).all()
    ]


def latest_runs(session: Session, site: Site) -> list[LatestRun]:
    """Every probe run of each agent's newest report, with its headline values.

    Headline values are single readings and medians (``stat`` value or p50): what a
    technician reads first; the full set is in the export.
    """
    newest = (
        select(Report.agent_id, func.max(Report.created_at).label("created_at"))
        .join(Agent, col(Agent.id) == Report.agent_id)
        .where(Agent.site_id == site.id)
        .group_by(col(Report.agent_id))
        .subquery()
    )
    reports = session.exec(
        select(Report, Room.name)
        .join(newest, (col(Report.agent_id) == newest.c.agent_id)
              & (col(Report.created_at) == newest.c.created_at))
        .join(Agent, col(Agent.id) == Report.agent_id)
        .join(Room, col(Room.id) == Agent.room_id)
        .order_by(col(Room.name), col(Report.agent_id))
    ).all()
    out: list[LatestRun] = []
    for report, room in reports:
        runs = session.exec(select(ProbeRun).where(ProbeRun.report_pk == report.id)
                            .order_by(col(ProbeRun.id))).all()
        values = session.exec(
            select(Measurement).where(Measurement.report_pk == report.id,
                                      col(Measurement.stat).in_(["value", "p50"]))
            .order_by(col(Measurement.id))).all()
        by_run: dict[int | None, list[Measurement]] = {}
        for m in values:
            by_run.setdefault(m.probe_run_id, []).append(m)
        for run in runs:
            out.append(LatestRun(
                time=report.created_at, agent_id=report.agent_id, room=room, probe=run.probe,
                target=run.target, status=run.status, reason=run.reason or "",
                values=tuple((m.metric, m.value if m.text is None else m.text, m.unit, m.stat,
                              m.method) for m in by_run.get(run.id, []))))
    return out

"""Builders of the rows a room test reads: agents in rooms and the reports answering a job.

Reports are written as rows (as ingest stores them), so these tests do not depend on the
ingest path; ``tests/collector/test_ingest*.py`` cover that.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from agent.wire import EnrolRequest
from collector.models import Agent, Measurement, ProbeRun, Report
from collector.services.enrolment import enrol
from collector.services.sites import create_site


@dataclass(frozen=True)
class Run:
    """A bandwidth run: ok with ``mbps``, or failed/skipped with ``reason``."""

    direction: str
    mbps: float | None = None
    status: str = "ok"
    reason: str | None = None
    start: datetime | None = None
    seconds: float = 10.0
    p50: float | None = None
    max: float | None = None
    target: str | None = None


def new_site(session: Session, name: str = "Test School") -> str:
    return create_site(session, name)


def new_agent(session: Session, token: str, room: str, now: datetime) -> str:
    """Enrol an agent (seen at ``now``); its id."""
    return enrol(session, EnrolRequest(token=token, room=room), now).agent_id


def add_job_report(session: Session, agent_id: str, job_id: str | None, runs: list[Run],
                   at: datetime, clock_offset_s: float | None = None,
                   trigger: str = "job") -> None:
    agent = session.get(Agent, agent_id)
    assert agent is not None
    report = Report(report_id=str(uuid.uuid4()), agent_id=agent_id, created_at=at,
                    received_at=at, schema_version=1, trigger=trigger, job_id=job_id,
                    clock_offset_s=clock_offset_s)
    session.add(report)
    session.flush()
    assert report.id is not None
    for run in runs:
        start = run.start or at
        target = run.target or f"http://127.0.0.1:8000/speed/{run.direction}"
        row = ProbeRun(report_pk=report.id, probe="bandwidth", target=target,
                       status=run.status, reason=run.reason, started_at=start,
                       finished_at=start + timedelta(seconds=run.seconds))
        session.add(row)
        session.flush()
        assert row.id is not None
        values = [] if run.status != "ok" else [
            (f"{run.direction}_mbps", "Mbps", "value", run.mbps),
            ("loaded_latency_ms", "ms", "p50", run.p50),
            ("loaded_latency_ms", "ms", "max", run.max)]
        session.add_all(
            Measurement(report_pk=report.id, probe_run_id=row.id, agent_id=agent_id,
                        site_id=agent.site_id, room_id=agent.room_id, time=start,
                        probe="bandwidth", target=target, metric=metric, value=value,
                        unit=unit, method="http_get_4_streams", stat=stat)
            for metric, unit, stat, value in values if value is not None)
    session.commit()

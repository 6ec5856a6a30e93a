"""Plain rows handed from the database queries to the pure services (readiness, export)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class MeasurementRow:
    time: datetime
    agent_id: str
    room: str
    probe: str
    target: str | None
    metric: str
    value: float | None
    unit: str
    method: str
    report_id: str
    stat: str = "value"
    samples: int = 1
    text: str | None = None
    period: str | None = None
    in_lesson: bool | None = None
    """None: the site had no timetable when the measurement arrived."""
    trigger: str = "manual"
    job_id: str | None = None


@dataclass(frozen=True)
class FailureRow:
    """A probe run that did not measure (status failed or skipped) and why."""

    time: datetime
    agent_id: str
    probe: str
    target: str | None
    status: str
    reason: str


@dataclass(frozen=True)
class LatestRun:
    """One probe run of an agent's newest report, for the report's "last cycle" view."""

    time: datetime
    agent_id: str
    room: str
    probe: str
    target: str | None
    status: str
    reason: str
    values: tuple[tuple[str, float | str | None, str, str, str], ...]
    """(metric, value or text, unit, stat, method)"""

"""The wire format between agent and collector (schema_version 1).

Plain stdlib dataclasses: the agent builds and serialises them without pydantic; the
collector validates incoming JSON against the same classes with pydantic's TypeAdapter
(``collector.wire_validation``) and then applies :func:`semantic_errors`, the checks a type
system cannot express (timezone-aware times, catalogue names, units and plausible ranges).
The JSON Schema generated from these classes is checked in as ``agent/wire.schema.json``;
a test fails when the classes change without it.

Shape::

    ReportBatch { schema_version, reports: [Report] }
    Report      { schema_version, report_id (UUID, made by the agent), agent_id,
                  created_at (tz-aware), agent_version, spool_dropped, results: [ProbeResult] }
    ProbeResult { probe, target?, status ok|failed|skipped, reason?, started_at, finished_at,
                  measurements: [Measurement] }
    Measurement { metric (catalogue name), unit, method, value? | text?, stat, samples }

A failed or skipped result carries a reason and no measurements: a probe never invents
a number. ``report_id`` makes re-uploads harmless: the collector stores each id once.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from agent.metrics import STATS, CatalogueError, check_value

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})
MAX_MEASUREMENTS_PER_RESULT = 200
MAX_PROBE_CHARS = 64
MAX_TARGET_CHARS = 500
"""On PostgreSQL a probe run is one database row (``collector.measurement_runs``), and
its probe, target and values are one entry of the readiness index, which PostgreSQL caps
at 2,704 bytes: 200 values (8 bytes each) with the longest probe, target and period fit
with room to spare (a test stores one). No probe comes near: the most values, a latency
cycle per target, is 17; targets are URLs, host names and interfaces."""

Status = Literal["ok", "failed", "skipped"]
Stat = Literal["value", "min", "p50", "p95", "max", "mean"]
Trigger = Literal["scheduled", "manual", "job", "burst"]
"""Why a report was made: the agent's cadence, a person running ``agent once``, a
coordinated room test (``job``), or a measurement burst after a flagged problem."""
JobKind = Literal["room_test", "burst"]


@dataclass
class Measurement:
    """One number (or text) with the unit and the method that produced it."""

    metric: str
    unit: str
    method: str
    value: float | None = None
    text: str | None = None
    stat: Stat = "value"
    samples: int = 1


@dataclass
class ProbeResult:
    """The outcome of one probe against one target (or the device itself)."""

    probe: str
    status: Status
    started_at: datetime
    finished_at: datetime
    target: str | None = None
    reason: str | None = None
    measurements: list[Measurement] = field(default_factory=list)


@dataclass
class Report:
    """What one agent cycle produced; the unit of spooling and of de-duplication."""

    report_id: uuid.UUID
    agent_id: str
    created_at: datetime
    agent_version: str
    results: list[ProbeResult]
    spool_dropped: int = 0
    schema_version: int = SCHEMA_VERSION
    trigger: Trigger = "manual"
    job_id: str | None = None
    """The room test or burst this report answers (``trigger`` job or burst)."""
    clock_offset_s: float | None = None
    """Collector clock minus agent clock at the last control poll (None: never polled)."""


@dataclass
class ReportBatch:
    """``POST /api/v1/reports`` body: several spooled reports at once."""

    reports: list[Report]
    schema_version: int = SCHEMA_VERSION


@dataclass
class IngestResponse:
    accepted: list[str]
    duplicates: list[str]


@dataclass
class EnrolRequest:
    """``POST /api/v1/enrol`` body. No hostname or user name is ever sent."""

    token: str
    room: str
    agent_version: str = ""


@dataclass
class EnrolResponse:
    agent_id: str
    credential: str
    site: str
    room: str
    site_salt: str = ""
    """The site's key for hashing SSIDs/BSSIDs (the same on every PC of the site)."""


@dataclass
class Job:
    """Something the collector asks the agents of a room to do (from ``GET .../control``).

    ``room_test``: at ``start_at`` (collector clock) every agent of the room runs the
    ``directions`` for ``duration_s`` against the URLs, at once: a lesson-start simulation.
    ``burst``: run the light probes now, because someone flagged a problem in the room.
    """

    job_id: str
    kind: JobKind
    start_at: datetime
    duration_s: float = 0.0
    directions: list[str] = field(default_factory=list)
    download_url: str | None = None
    upload_url: str | None = None
    streams: int = 4
    reason: str | None = None


ROOM_TEST_PHASE_GAP_S = 2.0
"""A room test runs its directions one after another, this far apart, in this order."""


def room_test_span_s(duration_s: float, directions: int) -> float:
    """How long a room test loads the room's link: every phase and the gaps between."""
    phases = max(1, directions)
    return phases * duration_s + (phases - 1) * ROOM_TEST_PHASE_GAP_S


@dataclass
class AgentControl:
    """``GET /api/v1/agent/control``: what an agent polls for (timetable, jobs, clock)."""

    server_time: datetime
    site: str
    room: str
    site_salt: str
    timetable: dict[str, Any] | None
    """The site's timetable document (:mod:`agent.timetable` format), None if not set."""
    jobs: list[Job]
    poll_interval_s: float
    received_at: datetime | None = None
    """When the collector received the poll (``server_time`` is when it answered): with
    both, the agent's clock estimate excludes the collector's handling time (NTP)."""


@dataclass
class FlagRequest:
    """``POST /api/v1/flags``: a teacher or technician reports a problem in the room now."""

    note: str = ""
    created_at: datetime | None = None


@dataclass
class FlagResponse:
    flag_id: str
    burst_job_id: str | None
    """None when a flag was raised in the room moments ago (one burst covers both)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_report(agent_id: str, agent_version: str, results: list[ProbeResult],
               spool_dropped: int = 0, *, trigger: Trigger = "manual",
               job_id: str | None = None, clock_offset_s: float | None = None) -> Report:
    return Report(report_id=uuid.uuid4(), agent_id=agent_id, created_at=utcnow(),
                  agent_version=agent_version, results=results, spool_dropped=spool_dropped,
                  trigger=trigger, job_id=job_id, clock_offset_s=clock_offset_s)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    return obj


def to_jsonable(obj: Any) -> dict[str, Any]:
    """A wire dataclass as plain JSON types (ISO 8601 times, UUIDs as strings)."""
    out: dict[str, Any] = _jsonable(asdict(obj))
    return out


def semantic_errors(report: Report) -> list[str]:
    """Problems in an already type-checked report, each naming the bad value."""
    errors: list[str] = []
    where = f"report {report.report_id}"
    if report.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
        errors.append(f"{where}: unsupported schema_version {report.schema_version}")
    if report.created_at.tzinfo is None:
        errors.append(f"{where}: created_at {report.created_at.isoformat()} has no timezone")
    if report.spool_dropped < 0:
        errors.append(f"{where}: spool_dropped {report.spool_dropped} is negative")
    if report.job_id is not None and report.trigger not in ("job", "burst"):
        errors.append(f"{where}: job_id {report.job_id!r} needs trigger 'job' or 'burst', "
                      f"got {report.trigger!r}")
    if report.clock_offset_s is not None and not math.isfinite(report.clock_offset_s):
        errors.append(f"{where}: clock_offset_s {report.clock_offset_s!r} is not finite")
    for i, result in enumerate(report.results):
        at = f"{where} results[{i}] ({result.probe})"
        for name in ("started_at", "finished_at"):
            stamp: datetime = getattr(result, name)
            if stamp.tzinfo is None:
                errors.append(f"{at}: {name} {stamp.isoformat()} has no timezone")
        if (result.started_at.tzinfo is not None and result.finished_at.tzinfo is not None
                and result.finished_at < result.started_at):
            errors.append(f"{at}: finished_at is before started_at")
        if result.status != "ok" and not result.reason:
            errors.append(f"{at}: status {result.status!r} needs a reason")
        if result.status != "ok" and result.measurements:
            errors.append(f"{at}: status {result.status!r} must not carry measurements")
        if len(result.measurements) > MAX_MEASUREMENTS_PER_RESULT:
            errors.append(f"{at}: {len(result.measurements)} measurements, at most "
                          f"{MAX_MEASUREMENTS_PER_RESULT} in one probe run")
        if len(result.probe) > MAX_PROBE_CHARS:
            errors.append(f"{at}: probe name of {len(result.probe)} characters, at most "
                          f"{MAX_PROBE_CHARS}")
        if result.target is not None and len(result.target) > MAX_TARGET_CHARS:
            errors.append(f"{at}: target of {len(result.target)} characters, at most "
                          f"{MAX_TARGET_CHARS}")
        for j, m in enumerate(result.measurements):
            if m.stat not in STATS:
                errors.append(f"{at} measurements[{j}]: unknown stat {m.stat!r}")
            if m.samples < 1:
                errors.append(f"{at} measurements[{j}]: samples {m.samples} must be >= 1")
            if not m.method:
                errors.append(f"{at} measurements[{j}] ({m.metric}): method is empty")
            try:
                check_value(m.metric, m.unit, m.value, m.text)
            except CatalogueError as exc:
                errors.append(f"{at} measurements[{j}]: {exc}")
    return errors

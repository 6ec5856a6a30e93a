"""Coordinated room tests: make one, read its result, and a room's measured capacity.

A room test asks every agent of a room to run the bandwidth test at the same moment
(a lesson-start simulation). The agents live in the room when it is made (seen within
``LIVE_WINDOW``) are the ones it waits for; they are stored on the job. The result is
computed by :func:`collector.services.room_test_aggregate.aggregate` from the reports
that answer the job (``trigger`` "job", ``job_id``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from agent.wire import room_test_span_s, to_jsonable
from collector.models import Agent, Job, Measurement, ProbeRun, Report, Room, Site, utcnow
from collector.services.control import directions_of, wire_job
from collector.services.room_test_aggregate import (
    DIRECTIONS,
    BandwidthRun,
    JobInfo,
    RoomTestResult,
    aggregate,
    direction_of,
)
from collector.services.sites import SiteError

LIVE_WINDOW = timedelta(minutes=15)
PAST_TOLERANCE_S = 5.0
MAX_AHEAD = timedelta(days=7)
MIN_DURATION_S, MAX_DURATION_S = 5.0, 300.0
MIN_STREAMS, MAX_STREAMS = 1, 16
MAX_URL = 2000
LIST_LIMIT = 100
BANDWIDTH_METRICS = ("download_mbps", "upload_mbps", "loaded_latency_ms")


class UnknownRoom(SiteError):
    def __init__(self, site: str, room: str, known: list[str]) -> None:
        rooms = ", ".join(repr(r) for r in known) if known else "none yet (rooms appear when "\
            "an agent enrols in them)"
        super().__init__(f"site {site!r} has no room {room!r}; its rooms: {rooms}")


class UnknownJob(SiteError):
    def __init__(self, job_id: str, site: str | None = None) -> None:
        where = f" in site {site!r}" if site else ""
        super().__init__(f"no room test {job_id!r}{where}")


class RoomTestError(SiteError):
    """A room test that cannot be made; ``problems`` names each bad value."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class RoomTestConflict(SiteError):
    """The room already has a room test in that time."""


@dataclass(frozen=True)
class RoomCapacity:
    """A room's measured capacity: the totals of its latest complete room test."""

    room: str
    job_id: str
    measured_at: datetime
    download_mbps: float | None
    upload_mbps: float | None
    devices: int


def find_room(session: Session, site: Site, name: str) -> Room:
    room = session.exec(select(Room).where(Room.site_id == site.id, Room.name == name)).first()
    if room is None:
        known = session.exec(select(Room.name).where(Room.site_id == site.id)
                             .order_by(col(Room.name))).all()
        raise UnknownRoom(site.name, name, list(known))
    return room


def _check_url(name: str, url: str | None) -> list[str]:
    if url is None:
        return []
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [f"{name} {url[:80]!r} must be an http:// or https:// URL with a host"]
    if len(url) > MAX_URL:
        return [f"{name} is {len(url)} characters (max {MAX_URL})"]
    return []


def check_request(start_at: datetime, duration_s: float, directions: list[str],
                  streams: int, download_url: str | None, upload_url: str | None,
                  now: datetime) -> list[str]:
    """Every problem with a room test request (empty: it is fine)."""
    problems = []
    if start_at.tzinfo is None:
        problems.append(f"start_at {start_at.isoformat()} has no timezone")
    elif (now - start_at).total_seconds() > PAST_TOLERANCE_S:
        problems.append(f"start_at {start_at.isoformat()} is "
                        f"{(now - start_at).total_seconds():.0f} s in the past "
                        f"(now {now.isoformat(timespec='seconds')})")
    elif start_at - now > MAX_AHEAD:
        problems.append(f"start_at {start_at.isoformat()} is more than "
                        f"{MAX_AHEAD.days} days ahead")
    if not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
        problems.append(f"duration_s {duration_s:g} is outside "
                        f"{MIN_DURATION_S:g}..{MAX_DURATION_S:g} s")
    unknown = [d for d in directions if d not in DIRECTIONS]
    if not directions or unknown:
        problems.append(f"directions {directions!r} must be a non-empty subset of "
                        f"{list(DIRECTIONS)}")
    elif len(set(directions)) != len(directions):
        problems.append(f"directions {directions!r} repeats a direction")
    if not MIN_STREAMS <= streams <= MAX_STREAMS:
        problems.append(f"streams {streams} is outside {MIN_STREAMS}..{MAX_STREAMS}")
    return (problems + _check_url("download_url", download_url)
            + _check_url("upload_url", upload_url))


def live_agents(session: Session, room: Room, now: datetime) -> list[str]:
    """The room's non-revoked agents seen within ``LIVE_WINDOW`` before ``now``."""
    return list(session.exec(
        select(Agent.id).where(Agent.room_id == room.id, Agent.revoked == False,  # noqa: E712
                               col(Agent.last_seen) >= now - LIVE_WINDOW)
        .order_by(col(Agent.id))).all())


def job_span_s(job: Job) -> float:
    """How long the stored room test loads the link (download, gap, upload)."""
    return room_test_span_s(job.duration_s, len(directions_of(job)))


def _overlapping(session: Session, room: Room, start: datetime, end: datetime) -> Job | None:
    # Room tests last at most two phases of MAX_DURATION_S: only those starting shortly
    # before matter.
    earliest = start - timedelta(seconds=room_test_span_s(MAX_DURATION_S, 2))
    for job in session.exec(select(Job).where(Job.room_id == room.id, Job.kind == "room_test",
                                              col(Job.start_at) < end,
                                              col(Job.start_at) >= earliest)).all():
        if job.start_at + timedelta(seconds=job_span_s(job)) > start:
            return job
    return None


def create_room_test(session: Session, site: Site, room_name: str, start_at: datetime,
                     duration_s: float, directions: list[str], streams: int,
                     download_url: str | None, upload_url: str | None,
                     now: datetime) -> Job:
    """Store a room test for the room's live agents; raise naming what is wrong."""
    room = find_room(session, site, room_name)
    problems = check_request(start_at, duration_s, directions, streams, download_url,
                             upload_url, now)
    if problems:
        raise RoomTestError(problems)
    expected = live_agents(session, room, now)
    if not expected:
        raise RoomTestError([f"no agent in room {room.name!r} was seen in the last "
                             f"{LIVE_WINDOW.seconds // 60} min: a room test needs running "
                             "agents"])
    end = start_at + timedelta(seconds=room_test_span_s(duration_s, len(directions)))
    clash = _overlapping(session, room, start_at, end)
    if clash is not None:
        raise RoomTestConflict(
            f"room {room.name!r} already has room test {clash.id} from "
            f"{clash.start_at.isoformat(timespec='seconds')} for {clash.duration_s:g} s")
    assert site.id is not None and room.id is not None
    job = Job(id=str(uuid.uuid4()), site_id=site.id, room_id=room.id, kind="room_test",
              start_at=start_at, duration_s=duration_s,
              directions=",".join(d for d in DIRECTIONS if d in directions),
              download_url=download_url, upload_url=upload_url, streams=streams,
              reason=f"room test of {room.name!r}", created_at=now, expected_agents=expected)
    session.add(job)
    session.commit()
    session.refresh(job)
    return job


def job_dict(job: Job, site: str, room: str) -> dict[str, Any]:
    """The JSON shape of a made room test: the agents' job plus where, when made, for whom."""
    return {**to_jsonable(wire_job(job)), "site": site, "room": room,
            "created_at": job.created_at.isoformat(),
            "expected_agents": list(job.expected_agents or [])}


def job_info(session: Session, job: Job) -> JobInfo:
    room = session.get(Room, job.room_id)
    site = session.get(Site, job.site_id)
    assert room is not None and site is not None
    return JobInfo(job_id=job.id, site=site.name, room=room.name, start_at=job.start_at,
                   duration_s=job.duration_s,
                   directions=tuple(d for d in job.directions.split(",") if d),
                   created_at=job.created_at, expected_agents=tuple(job.expected_agents or ()))


def get_room_test(session: Session, job_id: str, site: Site | None = None) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.kind != "room_test" or (site is not None and job.site_id != site.id):
        raise UnknownJob(job_id, site.name if site else None)
    return job


def _reports(session: Session, job: Job) -> list[Report]:
    return list(session.exec(
        select(Report).join(Agent, col(Agent.id) == Report.agent_id)
        .where(Report.job_id == job.id, Report.trigger == "job",
               Agent.room_id == job.room_id)).all())


def bandwidth_runs(session: Session, job: Job, reports: list[Report]) -> list[BandwidthRun]:
    """The bandwidth probe runs of the reports, with their headline values."""
    by_pk = {r.id: r for r in reports}
    if not by_pk:
        return []
    runs = session.exec(select(ProbeRun).where(col(ProbeRun.report_pk).in_(list(by_pk)),
                                               ProbeRun.probe == "bandwidth")
                        .order_by(col(ProbeRun.id))).all()
    values: dict[int, dict[tuple[str, str], float]] = {}
    for m in session.exec(select(Measurement).where(
            col(Measurement.report_pk).in_(list(by_pk)),  # indexed; probe_run_id is not
            col(Measurement.probe_run_id).in_([r.id for r in runs]),
            col(Measurement.metric).in_(BANDWIDTH_METRICS))).all():
        if m.value is not None:
            values.setdefault(m.probe_run_id, {})[(m.metric, m.stat)] = m.value
    out = []
    for run in runs:
        assert run.id is not None
        report = by_pk[run.report_pk]
        got = values.get(run.id, {})
        direction = direction_of(run.target, (metric for metric, _ in got), run.reason or "",
                                 job.download_url, job.upload_url)
        mbps = got.get((f"{direction}_mbps", "value")) if direction else None
        out.append(BandwidthRun(
            agent_id=report.agent_id, direction=direction, status=run.status,
            reason=run.reason or "", started_at=run.started_at, finished_at=run.finished_at,
            clock_offset_s=report.clock_offset_s, mbps=mbps,
            loaded_p50_ms=got.get(("loaded_latency_ms", "p50")),
            loaded_max_ms=got.get(("loaded_latency_ms", "max"))))
    return out


def result_of(session: Session, job: Job, now: datetime) -> RoomTestResult:
    reports = _reports(session, job)
    return aggregate(job_info(session, job), {r.agent_id for r in reports},
                     bandwidth_runs(session, job, reports), now)


def room_test_result(session: Session, job_id: str, now: datetime,
                     site: Site | None = None) -> RoomTestResult:
    """The aggregate of room test ``job_id`` (of ``site``, when given) at ``now``."""
    return result_of(session, get_room_test(session, job_id, site), now)


def list_room_tests(session: Session, site: Site, now: datetime) -> list[RoomTestResult]:
    """The site's newest room tests (at most ``LIST_LIMIT``), newest first."""
    jobs = session.exec(select(Job).where(Job.site_id == site.id, Job.kind == "room_test")
                        .order_by(col(Job.start_at).desc()).limit(LIST_LIMIT)).all()
    return [result_of(session, job, now) for job in jobs]


def latest_room_capacity(session: Session, room_id: int,
                         now: datetime | None = None) -> RoomCapacity | None:
    """The totals of the room's latest complete room test that measured something."""
    when = now or utcnow()
    jobs = session.exec(select(Job).where(Job.room_id == room_id, Job.kind == "room_test",
                                          col(Job.start_at) <= when)
                        .order_by(col(Job.start_at).desc())).all()
    for job in jobs:
        result = result_of(session, job, when)
        down, up = result.total("download"), result.total("upload")
        if result.status == "complete" and (down is not None or up is not None):
            return RoomCapacity(room=result.job.room, job_id=job.id, measured_at=job.start_at,
                                download_mbps=down, upload_mbps=up,
                                devices=len({d.agent_id for d in result.devices}))
    return None

"""What an agent's control poll answers: its site's timetable and salt, its room's jobs.

Jobs listed (:func:`pending_jobs`): the room's ``room_test`` jobs that have not finished
(``start_at + duration_s`` still in the future, so one scheduled for next week is listed
now and the agent waits for it) and its ``burst`` jobs made in the last
:data:`BURST_FRESH`. While any is listed the agent polls every
:data:`BUSY_POLL_INTERVAL_S`, else every :data:`POLL_INTERVAL_S`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from agent.wire import AgentControl, room_test_span_s
from agent.wire import Job as WireJob
from collector.models import Agent, Job, Room, Site
from collector.services.enrolment import AgentIdentity
from collector.services.timetables import load_document

POLL_INTERVAL_S = 60.0
BUSY_POLL_INTERVAL_S = 30.0
BURST_FRESH = timedelta(minutes=10)
LONGEST_ROOM_TEST = timedelta(hours=1)
"""Bounds the SQL look-back for unfinished room tests (the API allows at most 300 s)."""


def directions_of(job: Job) -> list[str]:
    """The stored comma-separated directions of a room test, in order."""
    return [d for d in job.directions.split(",") if d]


def wire_job(job: Job) -> WireJob:
    return WireJob(job_id=job.id, kind="burst" if job.kind == "burst" else "room_test",
                   start_at=job.start_at, duration_s=job.duration_s,
                   directions=directions_of(job),
                   download_url=job.download_url, upload_url=job.upload_url,
                   streams=job.streams, reason=job.reason)


def pending_jobs(session: Session, site_id: int, room_id: int, now: datetime) -> list[WireJob]:
    """The room's unfinished room tests and fresh bursts, by start time."""
    of_room = (Job.site_id == site_id, Job.room_id == room_id)
    tests = session.exec(select(Job).where(
        *of_room, Job.kind == "room_test",
        col(Job.start_at) > now - LONGEST_ROOM_TEST)).all()
    bursts = session.exec(select(Job).where(
        *of_room, Job.kind == "burst", col(Job.created_at) >= now - BURST_FRESH)).all()
    running = [j for j in tests if j.start_at + timedelta(
        seconds=room_test_span_s(j.duration_s, len(directions_of(j)))) > now]
    chosen = sorted([*running, *bursts], key=lambda j: (j.start_at, j.id))
    return [wire_job(j) for j in chosen]


def record_poll(session: Session, agent_id: str, now: datetime, version: str | None,
                clock_offset_s: float | None) -> None:
    """Note that the agent polled: last seen now, and its version and clock offset if sent."""
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise LookupError(f"agent {agent_id!r} vanished during its poll")
    agent.last_seen = now
    if version:
        agent.agent_version = version
    if clock_offset_s is not None:
        agent.clock_offset_s = clock_offset_s
    session.add(agent)
    session.commit()


def build_control(session: Session, who: AgentIdentity, now: datetime) -> AgentControl:
    """The ``GET /api/v1/agent/control`` answer for the agent ``who`` at ``now``."""
    site = session.get(Site, who.site_id)
    room = session.get(Room, who.room_id)
    if site is None or room is None:
        raise LookupError(f"agent {who.agent_id!r}: site {who.site_id} or room {who.room_id} "
                          "is gone")
    jobs = pending_jobs(session, who.site_id, who.room_id, now)
    return AgentControl(server_time=now, site=site.name, room=room.name, site_salt=site.salt,
                        timetable=load_document(session, who.site_id), jobs=jobs,
                        poll_interval_s=BUSY_POLL_INTERVAL_S if jobs else POLL_INTERVAL_S)

"""When the supervisor starts a job's worker, and when a job is too old to run (pure).

A job's ``start_at`` is on the collector's clock; ``offset_s`` is collector minus agent
clock (:mod:`agent.control`), so the agent's own wall-clock time of the start is
``start_at - offset_s``.
"""

from __future__ import annotations

from agent.wire import Job, room_test_span_s

JOB_LEAD_S = 6.0
"""A room-test worker is started this long before the aligned start: the guardrails sample
the CPU for 1 s first, and an old PC with a cold disk takes seconds to start Python and
import httpx. The worker then waits for the exact moment."""
STALE_JOB_S = 900.0
"""A burst older than this, or a room test that ended longer ago, is dropped (logged)."""


def spawn_at(job: Job, offset_s: float | None, wall_now: float) -> float:
    """Agent wall-clock time at which to start the job's worker (a burst: now)."""
    local = job.start_at.timestamp() - (offset_s or 0.0)
    if job.kind == "burst":
        return min(local, wall_now)
    return local - JOB_LEAD_S


def is_stale(job: Job, collector_now: float) -> bool:
    """A burst raised, or a room test ended, more than :data:`STALE_JOB_S` ago."""
    span = (room_test_span_s(job.duration_s, len(job.directions))
            if job.kind == "room_test" else 0.0)
    return collector_now - (job.start_at.timestamp() + span) > STALE_JOB_S

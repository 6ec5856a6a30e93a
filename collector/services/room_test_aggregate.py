"""The result of a coordinated room test, computed from plain rows (no database).

Input: the job (:class:`JobInfo`), the agents whose reports answer it, and every bandwidth
probe run in those reports (:class:`BandwidthRun`, one per device and direction, as the
bandwidth probe makes them: ``download_mbps`` or ``upload_mbps`` with
``loaded_latency_ms`` p50/max). Output: :class:`RoomTestResult`.

Definitions (what the numbers mean):

- **device share** = the device's Mbps / the room total of that direction × 100.
- **room total** = the sum of the devices' goodputs in that direction (None when no
  device measured it: a total is never made of nothing).
- **room loaded latency** = the median of the devices' ``loaded_latency_ms`` p50 and the
  largest of their maxima.
- **window** = the first transfer's start to the last one's end, and **start skew** =
  the spread of the devices' first starts; both on the collector's clock (a run's
  ``started_at`` plus the report's ``clock_offset_s``, collector minus agent, when known).
  Skipped runs never started a transfer and are left out of both.
- **status**: ``pending`` before the start; ``complete`` once every expected agent has
  reported (and at least one has); ``running`` until ``start + duration + GRACE_S``;
  after that ``incomplete``, and each expected agent that never reported is a failure.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from agent.wire import room_test_span_s

GRACE_S = 120.0
DIRECTIONS = ("download", "upload")
METRIC_OF = {"download": "download_mbps", "upload": "upload_mbps"}

Status = Literal["pending", "running", "complete", "incomplete"]


@dataclass(frozen=True)
class JobInfo:
    job_id: str
    site: str
    room: str
    start_at: datetime
    duration_s: float
    directions: tuple[str, ...]
    created_at: datetime
    expected_agents: tuple[str, ...]


@dataclass(frozen=True)
class BandwidthRun:
    """One bandwidth probe run of a report that answers the job."""

    agent_id: str
    direction: str | None  # None: a failed/skipped run that does not say which
    status: str  # ok | failed | skipped
    reason: str
    started_at: datetime  # the agent's clock
    finished_at: datetime
    clock_offset_s: float | None = None  # collector minus agent, from the report
    mbps: float | None = None
    loaded_p50_ms: float | None = None
    loaded_max_ms: float | None = None

    def on_collector_clock(self, when: datetime) -> datetime:
        return when + timedelta(seconds=self.clock_offset_s or 0.0)


@dataclass(frozen=True)
class DeviceResult:
    agent_id: str
    direction: str
    mbps: float
    share_pct: float
    loaded_latency_p50_ms: float | None
    loaded_latency_max_ms: float | None
    expected: bool


@dataclass(frozen=True)
class DirectionTotal:
    direction: str
    total_mbps: float | None
    devices: int
    loaded_latency_p50_ms: float | None
    loaded_latency_max_ms: float | None


@dataclass(frozen=True)
class Failure:
    agent_id: str
    direction: str | None
    status: str  # failed | skipped | missing
    reason: str


@dataclass(frozen=True)
class RoomTestResult:
    job: JobInfo
    status: Status
    reported_agents: tuple[str, ...]
    devices: tuple[DeviceResult, ...]
    totals: tuple[DirectionTotal, ...]
    failures: tuple[Failure, ...]
    window_start: datetime | None
    window_end: datetime | None
    start_skew_s: float | None
    notes: tuple[str, ...] = field(default=())

    def total(self, direction: str) -> float | None:
        for t in self.totals:
            if t.direction == direction:
                return t.total_mbps
        return None


def direction_of(target: str | None, metrics: Iterable[str], reason: str,
                 download_url: str | None, upload_url: str | None) -> str | None:
    """Which direction a bandwidth run measured: its metric, else its URL, else its reason.

    Failed runs carry no measurements; the probe's target is the URL it used and its
    reason starts with the direction ("download from http://... failed: ...").
    """
    names = set(metrics)
    for direction, metric in METRIC_OF.items():
        if metric in names:
            return direction
    if target is not None:
        if target == download_url:
            return "download"
        if target == upload_url:
            return "upload"
        last = urlsplit(target).path.rstrip("/").rsplit("/", 1)[-1]
        if last in DIRECTIONS:
            return last
    first = reason.split(" ", 1)[0].lower()
    return first if first in DIRECTIONS else None


def status_of(job: JobInfo, reported: set[str], now: datetime) -> Status:
    if now < job.start_at:
        return "pending"
    if reported and not set(job.expected_agents) - reported:
        return "complete"
    if now < deadline(job):
        return "running"
    return "incomplete"


def deadline(job: JobInfo) -> datetime:
    """When the test gives up waiting for results."""
    span = room_test_span_s(job.duration_s, len(job.directions))
    return job.start_at + timedelta(seconds=span + GRACE_S)


def _latest_ok(runs: list[BandwidthRun]) -> dict[tuple[str, str], BandwidthRun]:
    chosen: dict[tuple[str, str], BandwidthRun] = {}
    for run in sorted(runs, key=lambda r: r.started_at):
        if run.status == "ok" and run.direction is not None and run.mbps is not None:
            chosen[(run.agent_id, run.direction)] = run  # a repeat replaces the earlier
    return chosen


def _total(direction: str, devices: list[DeviceResult]) -> DirectionTotal:
    mine = [d for d in devices if d.direction == direction]
    p50s = [d.loaded_latency_p50_ms for d in mine if d.loaded_latency_p50_ms is not None]
    maxes = [d.loaded_latency_max_ms for d in mine if d.loaded_latency_max_ms is not None]
    return DirectionTotal(
        direction=direction,
        total_mbps=round(sum(d.mbps for d in mine), 3) if mine else None,
        devices=len(mine),
        loaded_latency_p50_ms=round(statistics.median(p50s), 3) if p50s else None,
        loaded_latency_max_ms=max(maxes) if maxes else None)


def _devices(job: JobInfo, chosen: dict[tuple[str, str], BandwidthRun],
             ) -> list[DeviceResult]:
    sums = {d: sum(r.mbps or 0.0 for (_, rd), r in chosen.items() if rd == d)
            for d in DIRECTIONS}
    expected = set(job.expected_agents)
    out = []
    for (agent_id, direction), run in sorted(chosen.items()):
        assert run.mbps is not None
        total = sums[direction]
        out.append(DeviceResult(
            agent_id=agent_id, direction=direction, mbps=run.mbps,
            share_pct=round(100.0 * run.mbps / total, 1) if total > 0 else 0.0,
            loaded_latency_p50_ms=run.loaded_p50_ms, loaded_latency_max_ms=run.loaded_max_ms,
            expected=agent_id in expected))
    return out


def _failures(job: JobInfo, reported: set[str], runs: list[BandwidthRun],
              chosen: dict[tuple[str, str], BandwidthRun], status: Status) -> list[Failure]:
    out = [Failure(r.agent_id, r.direction, r.status, r.reason)
           for r in sorted(runs, key=lambda r: (r.agent_id, r.started_at))
           if r.status != "ok"]
    said = {(f.agent_id, f.direction) for f in out}
    for agent_id in sorted(reported):
        for direction in job.directions:
            key = (agent_id, direction)
            if key not in chosen and key not in said and (agent_id, None) not in said:
                out.append(Failure(agent_id, direction, "missing",
                                   f"agent {agent_id} reported no {direction} result"))
    if status == "incomplete":
        out += [Failure(a, None, "missing", f"agent {a} did not report")
                for a in job.expected_agents if a not in reported]
    return out


def aggregate(job: JobInfo, reported: Iterable[str], runs: Iterable[BandwidthRun],
              now: datetime) -> RoomTestResult:
    """The room test's result from its rows (pure: see the module's definitions)."""
    reported_set = set(reported)
    all_runs = [r for r in runs if r.agent_id in reported_set]
    status = status_of(job, reported_set, now)
    chosen = _latest_ok(all_runs)
    devices = _devices(job, chosen)
    notes = [f"agent {a} was not live when the test was made but reported; it is counted"
             for a in sorted(reported_set - set(job.expected_agents))]
    started = [r for r in all_runs if r.status != "skipped"]
    first: dict[str, datetime] = {}
    for r in started:
        at = r.on_collector_clock(r.started_at)
        first[r.agent_id] = min(at, first.get(r.agent_id, at))
    return RoomTestResult(
        job=job, status=status, reported_agents=tuple(sorted(reported_set)),
        devices=tuple(devices),
        totals=tuple(_total(d, devices) for d in job.directions),
        failures=tuple(_failures(job, reported_set, all_runs, chosen, status)),
        window_start=min(first.values()) if first else None,
        window_end=max((r.on_collector_clock(r.finished_at) for r in started), default=None),
        start_skew_s=(round((max(first.values()) - min(first.values())).total_seconds(), 3)
                      if first else None),
        notes=tuple(notes))


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def result_dict(result: RoomTestResult) -> dict[str, Any]:
    """The JSON shape of ``GET /api/v1/sites/{site}/room-tests/{job_id}``."""
    job = result.job
    return {
        "job_id": job.job_id, "site": job.site, "room": job.room, "status": result.status,
        "start_at": job.start_at.isoformat(), "duration_s": job.duration_s,
        "directions": list(job.directions), "created_at": job.created_at.isoformat(),
        "expected_agents": list(job.expected_agents),
        "reported_agents": list(result.reported_agents),
        "devices": [{"agent_id": d.agent_id, "direction": d.direction, "mbps": d.mbps,
                     "share_pct": d.share_pct, "expected": d.expected,
                     "loaded_latency_ms": {"p50": d.loaded_latency_p50_ms,
                                           "max": d.loaded_latency_max_ms}}
                    for d in result.devices],
        "totals": {t.direction: {"total_mbps": t.total_mbps, "devices": t.devices,
                                 "loaded_latency_ms": {"p50": t.loaded_latency_p50_ms,
                                                       "max": t.loaded_latency_max_ms}}
                   for t in result.totals},
        "failures": [{"agent_id": f.agent_id, "direction": f.direction, "status": f.status,
                      "reason": f.reason} for f in result.failures],
        "window": {"start": _iso(result.window_start), "end": _iso(result.window_end)},
        "start_skew_s": result.start_skew_s,
        "notes": list(result.notes),
    }

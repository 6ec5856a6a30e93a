"""The collector's Prometheus metrics: ingest counters and fleet / verdict gauges.

Every app has its own :class:`prometheus_client.CollectorRegistry` (the library's global
one is never used: several apps in one process, as in the tests, must not share counts).
It is found through the app's engine (:func:`metrics_for`) because ingest
(:func:`collector.services.ingest.store_group`) is handed the engine, not the app; the
mapping holds engines weakly, so a dropped app takes its metrics with it.

Counters (per process, like any Prometheus counter; ``rate()`` copes with restarts):

- ``classprobe_reports_ingested_total``: reports stored (duplicates are not counted);
- ``classprobe_measurements_ingested_total``: measurements of those reports.

Gauges, computed at scrape time from the database and cached for :data:`STATE_TTL_S`
(readiness evaluates every profile of every site: too dear for every scrape):

- ``classprobe_agents{site,state}``: agents per fleet state (live / at-risk / silent /
  revoked, :func:`collector.services.fleet.agent_state`), zeros included;
- ``classprobe_verdicts{site,profile,status}``: 1 for the profile's current overall
  verdict in the site, 0 for the other statuses (a state set), so
  ``sum by (status) (classprobe_verdicts)`` counts the verdicts.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.wire import IngestResponse, ReportBatch
from collector.models import Agent, Site, utcnow
from collector.services.fleet import STATES, agent_state
from collector.services.profiles import ProfileError
from collector.services.site_report import readiness_report
from collector.services.sites import SiteError

STATE_TTL_S = 60.0
VERDICT_STATUSES = ("pass", "warn", "fail", "unknown")
log = logging.getLogger("classprobe.collector.metrics")


@dataclass(frozen=True)
class StateSnapshot:
    """What the gauges show: ``(site, state, agents)`` and ``(site, profile, status)``."""

    agents: tuple[tuple[str, str, int], ...]
    verdicts: tuple[tuple[str, str, str], ...]


def agent_counts(session: Session, now: datetime) -> tuple[tuple[str, str, int], ...]:
    """Agents per site and fleet state; every state of every site, zeros included."""
    counts = {(name, state): 0 for name in session.exec(select(Site.name)).all()
              for state in STATES}
    rows = session.exec(select(Site.name, Agent.last_seen, Agent.revoked)
                        .join(Site, col(Site.id) == Agent.site_id)).all()
    for site, last_seen, revoked in rows:
        counts[(site, agent_state(last_seen, revoked, now))] += 1
    return tuple((site, state, n) for (site, state), n in sorted(counts.items()))


def verdict_statuses(session: Session, now: datetime) -> tuple[tuple[str, str, str], ...]:
    """Each site's overall verdict per known profile (what the readiness report says).

    A site that cannot be judged (a stored profile that no longer loads) is logged and
    left out, so the other sites and the counters are still scraped."""
    out: list[tuple[str, str, str]] = []
    for site in session.exec(select(Site.name).order_by(col(Site.name))).all():
        try:
            report = readiness_report(session, site, None, None, now)
        except (ProfileError, SiteError) as exc:
            log.warning("metrics: no verdicts for site %r: %s", site, exc)
            continue
        out.extend((site, v.profile.id, v.status) for v in report.verdicts)
    return tuple(out)


def state_snapshot(engine: Engine, now: datetime) -> StateSnapshot:
    with Session(engine) as session:
        return StateSnapshot(agent_counts(session, now), verdict_statuses(session, now))


class StateCollector:
    """The gauges, from a :class:`StateSnapshot` at most ``ttl_s`` old.

    ``clock`` (monotonic seconds) and ``now`` are injectable for tests. One scrape
    computes at a time; the others wait for it and share its result.
    """

    def __init__(self, engine: Engine, ttl_s: float = STATE_TTL_S,
                 clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._cached: tuple[float, StateSnapshot] | None = None

    def snapshot(self) -> StateSnapshot:
        with self._lock:
            at = self._clock()
            if self._cached is None or at - self._cached[0] >= self._ttl_s:
                self._cached = (at, state_snapshot(self._engine, self._now()))
            return self._cached[1]

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        agents = GaugeMetricFamily(
            "classprobe_agents", "Agents per site and fleet state (live, at-risk, silent, "
            "revoked)", labels=["site", "state"])
        verdicts = GaugeMetricFamily(
            "classprobe_verdicts", "1 for the current overall verdict of a profile in a "
            "site, 0 for the other statuses", labels=["site", "profile", "status"])
        return agents, verdicts

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot()
        agents, verdicts = self._families()
        for site, state, n in snap.agents:
            agents.add_metric([site, state], n)
        for site, profile, status in snap.verdicts:
            for candidate in VERDICT_STATUSES:
                verdicts.add_metric([site, profile, candidate], int(candidate == status))
        return agents, verdicts


class CollectorMetrics:
    """One app's registry with its counters and gauges."""

    def __init__(self, engine: Engine, ttl_s: float = STATE_TTL_S) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reports = Counter("classprobe_reports_ingested",
                               "Reports stored by ingest (duplicates not counted)",
                               registry=self.registry)
        self.measurements = Counter("classprobe_measurements_ingested",
                                    "Measurements stored by ingest",
                                    registry=self.registry)
        self.state = StateCollector(engine, ttl_s)
        self.registry.register(self.state)


_by_engine: weakref.WeakKeyDictionary[Engine, CollectorMetrics] = weakref.WeakKeyDictionary()
_by_engine_lock = threading.Lock()


def metrics_for(engine: Engine) -> CollectorMetrics:
    """The metrics of the app that owns ``engine`` (made on first use)."""
    with _by_engine_lock:
        found = _by_engine.get(engine)
        if found is None:
            found = _by_engine[engine] = CollectorMetrics(engine)
        return found


def stored_counts(batch: ReportBatch, response: IngestResponse) -> tuple[int, int]:
    """(reports, measurements) that ingest stored: the accepted reports, each once."""
    wanted = set(response.accepted)
    reports = measurements = 0
    for report in batch.reports:
        rid = str(report.report_id)
        if rid in wanted:
            wanted.discard(rid)
            reports += 1
            measurements += sum(len(result.measurements) for result in report.results)
    return reports, measurements


def count_ingest(engine: Engine, batch: ReportBatch, response: IngestResponse) -> None:
    """Add a committed batch to the ingest counters of ``engine``'s app."""
    reports, measurements = stored_counts(batch, response)
    found = metrics_for(engine)
    found.reports.inc(reports)
    found.measurements.inc(measurements)

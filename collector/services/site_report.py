"""Everything a site's readiness report shows, gathered once for the API, page and CLI.

:func:`readiness_report` is what ``classprobe report`` and ``GET
/api/v1/sites/{site}/readiness`` share: it picks the profiles (every known profile, one
named, or a campaign's), limits the rows to a campaign's window when one is named, and
builds the :class:`SiteReport`.

``fast`` (the default) gathers only the samples (:mod:`collector.services.sample_query`,
grouped by the database on PostgreSQL, judged with numpy) and takes the rows that
several products' combined room capacity reads from those samples too; ``fast=False``
reads every row into Python (:func:`queries.measurement_rows`): the reference the fast
path matches field for field (``tests/collector/test_sql_evaluation.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from collector.models import Campaign, Room, Site
from collector.services.campaigns import campaign_profiles, campaign_rows, get_campaign
from collector.services.capacity import RoomCapacityVerdict, combined_capacity, per_student_needs
from collector.services.fleet import Fleet, fleet_dict, fleet_of
from collector.services.profiles import Profile, profile_registry
from collector.services.queries import failure_rows, latest_runs, measurement_rows
from collector.services.readiness import (
    PreparedSite,
    ProfileVerdict,
    evaluate_many,
    evaluate_prepared,
)
from collector.services.readiness_json import capacity_dict, verdict_dict
from collector.services.remediation import WIFI_CONTEXT_METRICS
from collector.services.room_tests import RoomCapacity, latest_room_capacity
from collector.services.rows import FailureRow, LatestRun, MeasurementRow
from collector.services.sample_cells import CellSamples
from collector.services.sample_query import prepared_site
from collector.services.sites import AgentInfo, SiteError, agents_of, get_site


class UnknownProfile(SiteError):
    """A profile id that is not in the registry (or not in the campaign)."""


@dataclass(frozen=True)
class CampaignInfo:
    name: str
    start_at: datetime
    end_at: datetime
    profiles: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class SiteReport:
    site: str
    generated_at: datetime
    verdicts: tuple[ProfileVerdict, ...]
    agents: tuple[AgentInfo, ...]
    latest: tuple[LatestRun, ...] = ()
    fleet: Fleet | None = None
    capacity: tuple[RoomCapacity, ...] = ()
    """Each room's measured capacity: its latest complete coordinated room test."""
    campaign: CampaignInfo | None = None
    """The campaign whose window and profiles the report is limited to."""
    combined: tuple[RoomCapacityVerdict, ...] = ()
    """With two or more products that state per-student needs: all of them at once."""


def room_capacities(session: Session, site: Site, now: datetime,
                    since: datetime | None = None) -> tuple[RoomCapacity, ...]:
    """Each room's latest complete room test up to ``now`` (and from ``since``)."""
    rooms = session.exec(select(Room).where(Room.site_id == site.id)
                         .order_by(col(Room.name))).all()
    found = (latest_room_capacity(session, room.id, now) for room in rooms if room.id)
    return tuple(c for c in found if c is not None
                 and (since is None or c.measured_at >= since))


def report_metrics(profiles: Iterable[Profile]) -> set[str]:
    """The metrics the profiles judge, and the Wi-Fi load their remediation quotes."""
    return {r.metric for p in profiles for r in p.requirements} | set(WIFI_CONTEXT_METRICS)


def _in_window(failures: Sequence[FailureRow], campaign: Campaign | None) -> list[FailureRow]:
    if campaign is None:
        return list(failures)
    return [f for f in failures if campaign.start_at <= f.time < campaign.end_at]


def _verdicts_from_rows(session: Session, site: Site, profiles: list[Profile],
                        now: datetime, campaign: Campaign | None,
                        failures: list[FailureRow], capacity: tuple[RoomCapacity, ...],
                        with_needs: list[Profile],
                        ) -> tuple[tuple[ProfileVerdict, ...], list[RoomCapacityVerdict]]:
    """Every row in Python (:func:`measurement_rows`): the reference the fast path matches."""
    metrics = report_metrics(profiles)
    rows: list[MeasurementRow] = measurement_rows(session, site, metrics) \
        if campaign is None else campaign_rows(session, campaign, metrics)
    verdicts = evaluate_many(profiles, rows, failures, now, capacities=capacity,
                             site=site.name)
    combined = combined_capacity(with_needs, capacity, rows, site=site.name) \
        if len(with_needs) > 1 else []
    return verdicts, combined


def _verdicts_from_samples(prepared: PreparedSite, site: Site, profiles: list[Profile],
                           now: datetime, failures: list[FailureRow],
                           capacity: tuple[RoomCapacity, ...], with_needs: list[Profile],
                           ) -> tuple[tuple[ProfileVerdict, ...], list[RoomCapacityVerdict]]:
    """Only the samples, grouped by the database where it can (:mod:`sample_query`)."""
    verdicts = evaluate_prepared(profiles, prepared, failures, now, capacities=capacity,
                                 site=site.name)
    combined: list[RoomCapacityVerdict] = []
    if len(with_needs) > 1:
        needed = {m for p in with_needs for m in per_student_needs(p)}
        rows = cast(CellSamples, prepared.samples).rows(needed)
        combined = combined_capacity(with_needs, capacity,
                                     cast("list[MeasurementRow]", rows), site=site.name)
    return verdicts, combined


@contextmanager
def _samples_meanwhile(session: Session, site: Site, profiles: list[Profile],
                       campaign: Campaign | None) -> Iterator[Callable[[], PreparedSite]]:
    """Gathers the samples (:func:`prepared_site`) while the caller reads the rest; yields
    the function that waits for them. On PostgreSQL in a thread on a connection of its
    own (the database works on both at once: the samples are most of a report's
    database time); elsewhere (SQLite) when asked, on ``session``."""
    since, until = (None, None) if campaign is None else (campaign.start_at, campaign.end_at)
    metrics = report_metrics(profiles)
    engine = session.get_bind()
    if not isinstance(engine, Engine) or engine.dialect.name != "postgresql":
        yield lambda: prepared_site(session, site, profiles, metrics, since, until)
        return
    site_id = site.id

    def gather() -> PreparedSite:
        with Session(engine) as own:
            return prepared_site(own, own.get_one(Site, site_id), profiles, metrics, since,
                                 until)

    with ThreadPoolExecutor(1, thread_name_prefix="readiness-samples") as pool:
        pending = pool.submit(gather)
        yield pending.result


def build_site_report(session: Session, site: Site, profiles: Iterable[Profile],
                      now: datetime, campaign: Campaign | None = None, *,
                      fast: bool = True) -> SiteReport:
    """``fast``: fetch only the samples (:mod:`sample_query`); else every row."""
    profiles = list(profiles)
    with_needs = [p for p in profiles if per_student_needs(p)]
    with _samples_meanwhile(session, site, profiles, campaign) if fast \
            else nullcontext(None) as samples:
        if campaign is None:
            capacity = room_capacities(session, site, now)
        else:
            capacity = room_capacities(session, site, min(now, campaign.end_at),
                                       campaign.start_at)
        failures = _in_window(failure_rows(session, site), campaign)
        agents, latest = tuple(agents_of(session, site)), tuple(latest_runs(session, site))
        fleet = fleet_of(session, site, now)
        if samples is None:
            verdicts, combined_rooms = _verdicts_from_rows(
                session, site, profiles, now, campaign, failures, capacity, with_needs)
        else:
            verdicts, combined_rooms = _verdicts_from_samples(
                samples(), site, profiles, now, failures, capacity, with_needs)
    info = None if campaign is None else CampaignInfo(
        campaign.name, campaign.start_at, campaign.end_at, campaign_profiles(campaign),
        campaign.note)
    return SiteReport(site.name, now, verdicts, agents, latest, fleet, capacity, info,
                      tuple(combined_rooms))


def choose_profiles(registry: Mapping[str, Profile], profile_id: str | None,
                    campaign: Campaign | None = None) -> list[Profile]:
    """One named profile, the campaign's, or every profile; unknown ids raise."""
    allowed = list(campaign_profiles(campaign)) if campaign is not None else list(registry)
    missing = [p for p in allowed if p not in registry]
    if missing:
        raise UnknownProfile(f"campaign {campaign.name if campaign else ''!r} names profile "
                             f"{missing[0]!r}, which is no longer known")
    if profile_id is None:
        return [registry[p] for p in allowed]
    if profile_id not in registry:
        raise UnknownProfile(f"unknown profile {profile_id!r}; known: {', '.join(registry)}")
    if profile_id not in allowed:
        assert campaign is not None
        raise UnknownProfile(f"campaign {campaign.name!r} does not judge profile "
                             f"{profile_id!r}; its profiles: {', '.join(allowed)}")
    return [registry[profile_id]]


def readiness_report(session: Session, site_name: str, profile_id: str | None,
                     campaign_name: str | None, now: datetime, *,
                     fast: bool = True) -> SiteReport:
    """The report ``classprobe report`` and the readiness endpoint show.

    Raises :class:`collector.services.sites.UnknownSite`, :class:`UnknownProfile` or
    :class:`collector.services.campaigns.UnknownCampaign`, each naming the bad value.
    """
    site = get_site(session, site_name)
    campaign = get_campaign(session, site, campaign_name) if campaign_name else None
    chosen = choose_profiles(profile_registry(session), profile_id, campaign)
    return build_site_report(session, site, chosen, now, campaign, fast=fast)


def report_dict(report: SiteReport) -> dict[str, Any]:
    c = report.campaign
    return {
        "site": report.site,
        "generated_at": report.generated_at.isoformat(),
        "campaign": None if c is None else {
            "name": c.name, "start_at": c.start_at.isoformat(), "end_at": c.end_at.isoformat(),
            "profiles": list(c.profiles), "note": c.note},
        "profiles": [verdict_dict(v) for v in report.verdicts],
        "combined_capacity": [capacity_dict(x) for x in report.combined],
        "agents": [
            {"agent_id": a.agent_id, "room": a.room, "agent_version": a.agent_version,
             "created_at": a.created_at.isoformat(),
             "last_seen": a.last_seen.isoformat() if a.last_seen else None,
             "revoked": a.revoked}
            for a in report.agents
        ],
        "latest": [
            {"time": r.time.isoformat(), "agent_id": r.agent_id, "room": r.room,
             "probe": r.probe, "target": r.target, "status": r.status, "reason": r.reason,
             "values": [{"metric": m, "value": v, "unit": u, "stat": st, "method": meth}
                        for m, v, u, st, meth in r.values]}
            for r in report.latest
        ],
        "fleet": fleet_dict(report.fleet) if report.fleet else None,
        "room_capacity": [
            {"room": c.room, "job_id": c.job_id, "measured_at": c.measured_at.isoformat(),
             "download_mbps": c.download_mbps, "upload_mbps": c.upload_mbps,
             "devices": c.devices}
            for c in report.capacity
        ],
    }

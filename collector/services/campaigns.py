"""Campaigns: named assessments of a site (profiles and a time window), and comparing two.

A campaign's window is half-open, ``[start_at, end_at)``: a re-test campaign that starts
when the first ends shares no measurement with it. Every validation error names the
bad value. :func:`compare_campaigns` reads both campaigns' rows and hands them to the
pure :mod:`collector.services.compare`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from collector.models import Campaign, Site, utcnow
from collector.services.compare import DEFAULT_RESAMPLES, DEFAULT_SEED, Comparison, compare
from collector.services.profiles import Profile
from collector.services.queries import measurement_rows
from collector.services.rows import MeasurementRow

MAX_NAME = 100
MAX_NOTE = 500
MAX_PROFILES_TEXT = 1000  # Campaign.profiles column


class CampaignError(ValueError):
    """A campaign that cannot be made or used; the message names the bad value."""


class UnknownCampaign(CampaignError):
    pass


class DuplicateCampaign(CampaignError):
    pass


def campaign_profiles(campaign: Campaign) -> tuple[str, ...]:
    """The campaign's profile ids, in the order given at creation."""
    return tuple(p for p in campaign.profiles.split(",") if p)


def _check_name(name: str) -> str:
    if not name or name != name.strip():
        raise CampaignError(f"campaign name {name!r} must be non-empty without surrounding "
                            "spaces")
    if len(name) > MAX_NAME:
        raise CampaignError(f"campaign name {name[:20]!r}… is {len(name)} characters "
                            f"(max {MAX_NAME})")
    if any(not ch.isprintable() for ch in name):
        raise CampaignError(f"campaign name {name!r} must not contain control characters")
    return name


def _check_profiles(profiles: Sequence[str], known: Iterable[str]) -> list[str]:
    known = list(known)
    if not profiles:
        raise CampaignError("a campaign needs at least one profile; known: "
                            f"{', '.join(known) or '(none)'}")
    chosen: list[str] = []
    for profile in profiles:
        if profile not in known:
            raise CampaignError(f"unknown profile {profile!r}; known: {', '.join(known)}")
        if "," in profile:
            raise CampaignError(f"profile id {profile!r} contains ',' and cannot be stored")
        if profile not in chosen:
            chosen.append(profile)
    if len(",".join(chosen)) > MAX_PROFILES_TEXT:
        raise CampaignError(f"{len(chosen)} profiles ({', '.join(chosen)}) are too many for one "
                            f"campaign: their ids exceed {MAX_PROFILES_TEXT} characters")
    return chosen


def _check_window(start_at: datetime, end_at: datetime) -> None:
    for what, when in (("start", start_at), ("end", end_at)):
        if when.tzinfo is None or when.utcoffset() is None:
            raise CampaignError(f"{what} {when.isoformat()} has no UTC offset "
                                "(write it like 2026-09-07T08:00:00+01:00 or ...Z)")
    if end_at <= start_at:
        raise CampaignError(f"end {end_at.isoformat()} is not after start "
                            f"{start_at.isoformat()}")


def create_campaign(session: Session, site: Site, name: str, profiles: Sequence[str],
                    start_at: datetime, end_at: datetime, known_profiles: Iterable[str],
                    note: str = "", now: datetime | None = None) -> Campaign:
    """Store a new campaign of ``site``; ``known_profiles`` are the ids it may name."""
    _check_name(name)
    chosen = _check_profiles(profiles, known_profiles)
    _check_window(start_at, end_at)
    if len(note) > MAX_NOTE:
        raise CampaignError(f"note {note[:20]!r}… is {len(note)} characters (max {MAX_NOTE})")
    duplicate = DuplicateCampaign(f"site {site.name!r} already has a campaign {name!r}")
    if _find(session, site, name) is not None:
        raise duplicate
    assert site.id is not None
    campaign = Campaign(site_id=site.id, name=name, profiles=",".join(chosen),
                        start_at=start_at, end_at=end_at, note=note,
                        created_at=now or utcnow())
    session.add(campaign)
    try:
        session.commit()
    except IntegrityError as exc:  # a concurrent create of the same name
        session.rollback()
        raise duplicate from exc
    session.refresh(campaign)
    return campaign


def _find(session: Session, site: Site, name: str) -> Campaign | None:
    return session.exec(select(Campaign).where(Campaign.site_id == site.id,
                                               Campaign.name == name)).first()


def list_campaigns(session: Session, site: Site) -> list[Campaign]:
    """The site's campaigns, earliest window first."""
    return list(session.exec(select(Campaign).where(Campaign.site_id == site.id)
                             .order_by(col(Campaign.start_at), col(Campaign.name))).all())


def get_campaign(session: Session, site: Site, name: str) -> Campaign:
    campaign = _find(session, site, name)
    if campaign is None:
        names = [c.name for c in list_campaigns(session, site)]
        raise UnknownCampaign(f"site {site.name!r} has no campaign {name!r}; its campaigns: "
                              f"{', '.join(repr(n) for n in names) or '(none)'}")
    return campaign


def campaign_rows(session: Session, campaign: Campaign,
                  metrics: Iterable[str] | None = None) -> list[MeasurementRow]:
    """The campaign's site's measurements inside ``[start_at, end_at)``, oldest first."""
    site = session.get(Site, campaign.site_id)
    if site is None:
        raise CampaignError(f"campaign {campaign.name!r} belongs to no site "
                            f"(site id {campaign.site_id})")
    return measurement_rows(session, site, metrics, since=campaign.start_at,
                            until=campaign.end_at)


def campaign_dict(campaign: Campaign, site_name: str) -> dict[str, Any]:
    return {"site": site_name, "name": campaign.name,
            "profiles": list(campaign_profiles(campaign)),
            "start_at": campaign.start_at.isoformat(), "end_at": campaign.end_at.isoformat(),
            "note": campaign.note, "created_at": campaign.created_at.isoformat()}


def _notes(before: Campaign, after: Campaign) -> list[str]:
    notes = []
    if before.start_at < after.end_at and after.start_at < before.end_at:
        notes.append(f"the windows of {before.name!r} and {after.name!r} overlap: measurements "
                     "in both count on both sides, which hides a change")
    elif after.end_at <= before.start_at:
        notes.append(f"{after.name!r} (after) is earlier than {before.name!r} (before)")
    return notes


def compare_campaigns(session: Session, site: Site, profiles: Mapping[str, Profile],
                      profile_id: str, before_name: str, after_name: str, *,
                      resamples: int = DEFAULT_RESAMPLES,
                      seed: int = DEFAULT_SEED) -> Comparison:
    """Compare campaign ``after_name`` with ``before_name`` on one profile of ``profiles``.

    Both campaigns must assess the profile; they must be two different campaigns.
    """
    profile = profiles.get(profile_id)
    if profile is None:
        raise CampaignError(f"unknown profile {profile_id!r}; known: {', '.join(profiles)}")
    if before_name == after_name:
        raise CampaignError(f"before and after are the same campaign {before_name!r}")
    before, after = get_campaign(session, site, before_name), get_campaign(session, site,
                                                                           after_name)
    for campaign in (before, after):
        if profile_id not in campaign_profiles(campaign):
            raise CampaignError(f"campaign {campaign.name!r} does not assess profile "
                                f"{profile_id!r}; its profiles: "
                                f"{', '.join(campaign_profiles(campaign))}")
    metrics = {r.metric for r in profile.requirements}
    return compare(profile, campaign_rows(session, before, metrics),
                   campaign_rows(session, after, metrics), labels=(before.name, after.name),
                   resamples=resamples, seed=seed, notes=_notes(before, after))

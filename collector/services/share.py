"""Share links: read-only, expiring, revocable links to one site + profile (+ campaign).

A link's token (``secrets.token_urlsafe(32)``) is shown once, when it is made; the
database keeps only its SHA-256, and :func:`resolve` finds a link by the hash of the token
it is given. What a valid link shows is :mod:`collector.services.shared_report`.

:func:`resolve` answers a :class:`ShareScope` or a :class:`ShareRefusal` whose reason is
``unknown`` (no such token, or its site, campaign or profile is gone), ``revoked`` or
``expired``; the pages turn these into 404 / 410 without saying more.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlmodel import Session, col, select

from collector.models import Campaign, ShareLink, Site
from collector.security import new_secret, secret_hash
from collector.services.campaigns import campaign_profiles, get_campaign, list_campaigns
from collector.services.profiles import profile_registry
from collector.services.site_report import choose_profiles
from collector.services.sites import SiteError, get_site

MIN_DAYS = 1
MAX_DAYS = 90
DEFAULT_DAYS = 14
MAX_TOKEN_CHARS = 200
MAX_CREATED_BY = 100

Refusal = Literal["unknown", "expired", "revoked"]


class ShareError(SiteError):
    """A link that cannot be made or changed; the message names the bad value."""


@dataclass(frozen=True)
class ShareScope:
    """What a valid link may show."""

    link_id: int
    site: str
    profile: str
    campaign: str | None
    expires_at: datetime


@dataclass(frozen=True)
class ShareRefusal:
    reason: Refusal


def check_days(days: int) -> int:
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ShareError(f"days {days} is out of range: a link lasts {MIN_DAYS} to "
                         f"{MAX_DAYS} days")
    return days


def create_share(session: Session, site_name: str, profile_id: str,
                 campaign_name: str | None, days: int, created_by: str,
                 now: datetime) -> tuple[ShareLink, str]:
    """Store a new link; return it and its token (the only time the token exists).

    Raises :class:`collector.services.sites.UnknownSite`,
    :class:`collector.services.campaigns.UnknownCampaign`,
    :class:`collector.services.site_report.UnknownProfile` or :class:`ShareError`.
    """
    check_days(days)
    if now.tzinfo is None:
        raise ShareError(f"time {now.isoformat()} has no timezone")
    site = get_site(session, site_name)
    campaign = get_campaign(session, site, campaign_name) if campaign_name else None
    choose_profiles(profile_registry(session), profile_id, campaign)
    assert site.id is not None
    token = new_secret()
    link = ShareLink(token_hash=secret_hash(token), site_id=site.id, profile_id=profile_id,
                     campaign_id=None if campaign is None else campaign.id, created_at=now,
                     expires_at=now + timedelta(days=days), revoked=False,
                     created_by=created_by[:MAX_CREATED_BY])
    session.add(link)
    session.commit()
    session.refresh(link)
    return link, token


def list_shares(session: Session, site: Site) -> list[ShareLink]:
    """The site's links, newest first (revoked and expired ones too)."""
    return list(session.exec(select(ShareLink).where(ShareLink.site_id == site.id)
                             .order_by(col(ShareLink.created_at).desc(),
                                       col(ShareLink.id).desc())).all())


def revoke_share(session: Session, link_id: int, site: Site | None = None) -> ShareLink:
    """Revoke link ``link_id`` (of ``site`` when given); it stops working at once."""
    link = session.get(ShareLink, link_id)
    if link is None or (site is not None and link.site_id != site.id):
        where = "" if site is None else f" of site {site.name!r}"
        raise ShareError(f"no share link {link_id}{where}")
    if not link.revoked:
        link.revoked = True
        session.add(link)
        session.commit()
        session.refresh(link)
    return link


def link_state(link: ShareLink, now: datetime) -> Literal["active", "expired", "revoked"]:
    if link.revoked:
        return "revoked"
    return "expired" if now >= link.expires_at else "active"


def resolve(session: Session, token: str, now: datetime) -> ShareScope | ShareRefusal:
    """The scope of a valid token, or why it is refused."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return ShareRefusal("unknown")
    link = session.exec(select(ShareLink)
                        .where(ShareLink.token_hash == secret_hash(token))).first()
    if link is None or link.id is None:
        return ShareRefusal("unknown")
    state = link_state(link, now)
    if state != "active":
        return ShareRefusal(state)
    site = session.get(Site, link.site_id)
    campaign = None if link.campaign_id is None else session.get(Campaign, link.campaign_id)
    if site is None or (link.campaign_id is not None and campaign is None):
        return ShareRefusal("unknown")
    return ShareScope(link.id, site.name, link.profile_id,
                      None if campaign is None else campaign.name, link.expires_at)


def share_dict(session: Session, link: ShareLink, now: datetime) -> dict[str, Any]:
    """A link as JSON types (never its token: only its hash is known)."""
    site = session.get(Site, link.site_id)
    campaign = None if link.campaign_id is None else session.get(Campaign, link.campaign_id)
    return {"id": link.id, "site": site.name if site else None, "profile": link.profile_id,
            "campaign": campaign.name if campaign else None,
            "created_at": link.created_at.isoformat(),
            "expires_at": link.expires_at.isoformat(), "state": link_state(link, now),
            "created_by": link.created_by}


def share_path(token: str) -> str:
    return f"/share/{token}"


def share_url(base_url: str, token: str) -> str:
    """The link as given to the supplier: ``base_url`` (no trailing slash needed) + path."""
    return base_url.rstrip("/") + share_path(token)


@dataclass(frozen=True)
class ShareOptions:
    """What the share form offers for one site."""

    site: str
    profiles: tuple[tuple[str, str], ...]
    """(id, title) of every known profile."""
    campaigns: tuple[tuple[str, tuple[str, ...]], ...]
    """(name, its profile ids) of the site's campaigns."""
    min_days: int = MIN_DAYS
    max_days: int = MAX_DAYS
    default_days: int = DEFAULT_DAYS


def share_options(session: Session, site_name: str) -> ShareOptions:
    """The form's choices (include ``share_form.html`` with ``share_options`` set to this)."""
    site = get_site(session, site_name)
    registry = profile_registry(session)
    return ShareOptions(
        site.name, tuple((p.id, p.title) for p in registry.values()),
        tuple((c.name, campaign_profiles(c))
              for c in list_campaigns(session, site)))

"""Campaigns of a site and before/after comparisons (JSON API).

- ``POST /api/v1/sites/{site}/campaigns`` (admin): create; 201 with the campaign, 422
  naming the bad value, 409 when the name is taken;
- ``GET /api/v1/sites/{site}/campaigns``: the site's campaigns, earliest first;
- ``GET /api/v1/sites/{site}/compare?profile=&before=&after=``: per requirement, the
  change from campaign ``before`` to ``after`` (see :mod:`collector.services.compare`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from collector.db import SessionDep
from collector.deps import AdminDep, AdminOrSessionDep
from collector.errors import Problem
from collector.routers.sites import site_or_404
from collector.services.campaigns import (
    CampaignError,
    DuplicateCampaign,
    UnknownCampaign,
    campaign_dict,
    compare_campaigns,
    create_campaign,
    list_campaigns,
)
from collector.services.compare import DEFAULT_RESAMPLES, DEFAULT_SEED, comparison_dict
from collector.services.profiles import Profile, ProfileError, profile_registry

router = APIRouter(prefix="/api/v1", tags=["campaigns"])

MAX_RESAMPLES = 20_000


class CampaignRequest(BaseModel):
    """Body of ``POST /api/v1/sites/{site}/campaigns``; the window is ``[start_at, end_at)``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    profiles: list[str] = Field(description="profile ids the campaign assesses")
    start_at: datetime = Field(description="ISO 8601 time with its UTC offset")
    end_at: datetime = Field(description="ISO 8601 time with its UTC offset (not included)")
    note: str = ""


def _profiles(session: Session) -> dict[str, Profile]:
    try:
        return profile_registry(session)
    except ProfileError as exc:  # a stored profile that no longer loads: say which
        raise Problem(500, str(exc), [str(exc)]) from exc


def _problem(exc: CampaignError) -> Problem:
    status = 404 if isinstance(exc, UnknownCampaign) else \
        409 if isinstance(exc, DuplicateCampaign) else 422
    return Problem(status, str(exc), [str(exc)])


@router.post("/sites/{site}/campaigns", status_code=201)
def post_campaign(session: SessionDep, _admin: AdminDep, site: str,
                  body: CampaignRequest) -> dict[str, Any]:
    row = site_or_404(session, site)
    try:
        campaign = create_campaign(session, row, body.name, body.profiles, body.start_at,
                                   body.end_at, _profiles(session), body.note)
    except CampaignError as exc:
        raise _problem(exc) from exc
    return campaign_dict(campaign, row.name)


@router.get("/sites/{site}/campaigns")
def get_campaigns(session: SessionDep, _admin: AdminOrSessionDep,
                  site: str) -> list[dict[str, Any]]:
    row = site_or_404(session, site)
    return [campaign_dict(c, row.name) for c in list_campaigns(session, row)]


@router.get("/sites/{site}/compare")
def get_compare(session: SessionDep, _admin: AdminOrSessionDep, site: str, profile: str,
                before: str, after: str,
                resamples: Annotated[int, Query(ge=1, le=MAX_RESAMPLES)] = DEFAULT_RESAMPLES,
                seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Per requirement of ``profile``: campaign ``after`` against campaign ``before``."""
    row = site_or_404(session, site)
    profiles = _profiles(session)
    if profile not in profiles:
        raise Problem(404, f"unknown profile {profile!r}; known: {', '.join(profiles)}")
    try:
        comparison = compare_campaigns(session, row, profiles, profile, before, after,
                                       resamples=resamples, seed=seed)
    except CampaignError as exc:
        raise _problem(exc) from exc
    return comparison_dict(comparison)

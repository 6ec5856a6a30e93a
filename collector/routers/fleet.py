"""``GET /api/v1/sites/{site}/fleet``: each agent live / at-risk / silent / revoked, with
warnings, and the counts per room (admin key or admin session, like the other site
APIs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from collector.db import SessionDep
from collector.deps import AdminOrSessionDep
from collector.models import utcnow
from collector.routers.sites import site_or_404
from collector.services.fleet import fleet_dict, fleet_of

router = APIRouter(prefix="/api/v1", tags=["reports"])


@router.get("/sites/{site}/fleet")
def fleet(session: SessionDep, _admin: AdminOrSessionDep, site: str) -> dict[str, Any]:
    return fleet_dict(fleet_of(session, site_or_404(session, site), utcnow()))

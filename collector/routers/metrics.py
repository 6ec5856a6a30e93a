"""``GET /metrics``: the collector's Prometheus metrics (:mod:`collector.services.metrics`).

Open unless ``CLASSPROBE_METRICS_TOKEN`` is set; then it needs ``Authorization: Bearer
<token>`` (Prometheus: ``authorization: {credentials: ...}`` in the scrape config).
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from collector.deps import BEARER, SettingsDep, bearer
from collector.errors import Problem
from collector.services.metrics import metrics_for

router = APIRouter(tags=["metrics"])


def check_metrics_token(expected: str, authorization: str | None) -> None:
    """Nothing when ``expected`` is empty or matches the bearer token; else a 401."""
    if not expected:
        return
    given = bearer(authorization, "metrics token")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Problem(401, "metrics token not recognised (CLASSPROBE_METRICS_TOKEN)",
                      headers=BEARER)


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {CONTENT_TYPE_LATEST: {}},
          "description": "Prometheus text exposition format"}})
def metrics(request: Request, settings: SettingsDep,
            authorization: Annotated[str | None, Header()] = None) -> Response:
    """Ingest counters, agents per fleet state and verdicts per site and profile."""
    token = settings.metrics_token
    check_metrics_token(token.get_secret_value() if token else "", authorization)
    registry = metrics_for(request.app.state.engine).registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

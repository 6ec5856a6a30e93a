"""Enrolment: trade a site's enrolment token for this agent's own credential."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from agent.wire import EnrolRequest, EnrolResponse

if TYPE_CHECKING:
    import httpx

ENROL_PATH = "/api/v1/enrol"


class EnrolError(RuntimeError):
    """Enrolment failed; the message says why (never contains the token)."""


def enrol(client: httpx.Client, token: str, room: str, agent_version: str) -> EnrolResponse:
    """``POST /api/v1/enrol`` through ``client`` (whose base_url is the collector)."""
    import httpx

    body = asdict(EnrolRequest(token=token, room=room, agent_version=agent_version))
    try:
        response = client.post(ENROL_PATH, json=body)
    except httpx.HTTPError as exc:
        raise EnrolError(f"cannot reach the collector at {client.base_url}: "
                         f"{type(exc).__name__}: {exc}") from exc
    if response.status_code == 401:
        raise EnrolError(f"the collector refused the enrolment token (401): {_detail(response)}")
    if response.status_code != 200:
        raise EnrolError(f"enrolment failed with HTTP {response.status_code}: "
                         f"{_detail(response)}")
    try:
        data: Any = response.json()
        return EnrolResponse(agent_id=str(data["agent_id"]), credential=str(data["credential"]),
                             site=str(data["site"]), room=str(data["room"]),
                             site_salt=str(data.get("site_salt") or ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise EnrolError(f"the collector's enrolment answer is not an EnrolResponse: "
                         f"{response.text[:200]!r}") from exc


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    return str(data.get("detail", data)) if isinstance(data, dict) else str(data)[:200]

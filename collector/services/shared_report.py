"""What a share link shows: one site's verdict on one profile (+ campaign), and no more.

:func:`shared_report_dict` keeps, from a one-profile :class:`SiteReport`, the profile's
verdicts with their evidence and remediation, the rooms' measured capacity, the methods
that produced the judged metrics and the measurement window. It drops the fleet, the
agents' latest cycles and everything about other profiles, and it replaces every agent id
(whole or shortened, as the verdict texts quote them) by a number (``#1``, ``#2``…), the
same in the JSON, the page and the CSV. The dict is what ``/share/{token}/report.json``
signs, and the page renders the same dict, so the page shows what the signature covers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlmodel import Session

from collector.services.readiness_json import verdict_dict
from collector.services.report_formats import report_csv
from collector.services.report_provenance import Provenance, report_provenance
from collector.services.share import ShareScope
from collector.services.site_report import SiteReport, readiness_report, report_metrics
from collector.services.sites import AgentInfo, get_site

KIND = "classprobe shared readiness report"
PREFIX = 8
"""The shortest agent-id prefix the verdict texts quote."""
UNKNOWN_NOTE = "Too little data is reported as UNKNOWN, never as a pass."


def pseudonymiser(agents: Sequence[AgentInfo]) -> Callable[[str], str]:
    """A function that replaces each agent id in a text, whole or cut to 8+ characters,
    by ``#n`` (agents numbered by room, then enrolment)."""
    ordered = sorted(agents, key=lambda a: (a.room, a.created_at, a.agent_id))
    number = {a.agent_id: f"#{i}" for i, a in enumerate(ordered, start=1)}
    by_prefix: dict[str, list[str]] = {}
    for agent_id in number:
        by_prefix.setdefault(agent_id[:PREFIX].lower(), []).append(agent_id)
    if not by_prefix:
        return lambda text: text
    pattern = re.compile("(?<![0-9A-Za-z-])(?:" + "|".join(map(re.escape, by_prefix))
                         + ")[0-9a-f-]*", re.IGNORECASE)

    def replace(match: re.Match[str]) -> str:
        token = match.group(0).lower()
        candidates = by_prefix[token[:PREFIX]]
        chosen = next((a for a in candidates if a.startswith(token) or token.startswith(a)),
                      candidates[0])
        return number[chosen]

    return lambda text: pattern.sub(replace, text)


def _scrubbed(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k): _scrubbed(v, scrub) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v, scrub) for v in value]
    return value


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _window(report: SiteReport, prov: Provenance) -> dict[str, Any]:
    """The window that counts (a campaign's ``[from, to)``, else everything up to the
    report's time) and the first and last judged measurement in it."""
    c = report.campaign
    return {"from": None if c is None else c.start_at.isoformat(),
            "to": (report.generated_at if c is None else c.end_at).isoformat(),
            "to_included": c is None,
            "first_measurement": _iso(prov.first), "last_measurement": _iso(prov.last)}


def shared_report_dict(report: SiteReport, prov: Provenance,
                       expires_at: datetime) -> dict[str, Any]:
    """The scoped report of a one-profile :class:`SiteReport` as JSON types."""
    if len(report.verdicts) != 1:
        raise ValueError(f"a shared report has one profile, not {len(report.verdicts)}")
    c = report.campaign
    data = {
        "kind": KIND,
        "site": report.site,
        "generated_at": report.generated_at.isoformat(),
        "expires_at": expires_at.isoformat(),
        "campaign": None if c is None else {
            "name": c.name, "start_at": c.start_at.isoformat(),
            "end_at": c.end_at.isoformat(), "note": c.note},
        "measurement_window": _window(report, prov),
        "methods": [{"metric": m.metric, "method": m.method, "samples": m.samples,
                     "first": m.first.isoformat(), "last": m.last.isoformat()}
                    for m in prov.methods],
        "timetable": None if prov.timetable is None else asdict(prov.timetable),
        "profile": verdict_dict(report.verdicts[0]),
        "room_tests": [{"room": t.room, "measured_at": t.measured_at.isoformat(),
                        "download_mbps": t.download_mbps, "upload_mbps": t.upload_mbps,
                        "devices": t.devices} for t in report.capacity],
        "notes": [UNKNOWN_NOTE,
                  "Devices are numbered (#1, #2…) instead of showing their ids."],
    }
    out: dict[str, Any] = _scrubbed(data, pseudonymiser(report.agents))
    return out


def shared_report(session: Session, scope: ShareScope,
                  now: datetime) -> tuple[SiteReport, dict[str, Any]]:
    """The one-profile report of ``scope`` at ``now`` and its shared dict.

    Raises what :func:`readiness_report` raises when the site, campaign or profile is gone.
    """
    report = readiness_report(session, scope.site, scope.profile, scope.campaign, now)
    c = report.campaign
    prov = report_provenance(session, get_site(session, scope.site),
                             report_metrics(v.profile for v in report.verdicts),
                             None if c is None else c.start_at,
                             None if c is None else c.end_at)
    return report, shared_report_dict(report, prov, scope.expires_at)


def shared_report_csv(report: SiteReport) -> str:
    """The one-profile report as CSV (:func:`report_csv`), agent ids replaced by ``#n``."""
    return pseudonymiser(report.agents)(report_csv(report))

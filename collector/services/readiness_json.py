"""Readiness verdicts as plain JSON types (the API, ``report --format json``)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from collector.services.capacity import RoomCapacityVerdict
from collector.services.profiles import Profile
from collector.services.readiness import ProfileVerdict, RequirementVerdict


def jsonable(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    return obj


def profile_dict(profile: Profile) -> dict[str, Any]:
    out: dict[str, Any] = jsonable(asdict(profile))
    return out


def capacity_dict(c: RoomCapacityVerdict) -> dict[str, Any]:
    out: dict[str, Any] = jsonable(asdict(c))
    return out


def requirement_dict(v: RequirementVerdict) -> dict[str, Any]:
    """The requirement's fields, then its verdict, evidence, windows, rooms and worst lists."""
    item: dict[str, Any] = jsonable(asdict(v.requirement))
    item.update(
        status=v.status, reason=v.reason,
        evidence=None if v.evidence is None else jsonable(asdict(v.evidence)),
        windows={w: {"status": r.status, "reason": r.reason,
                     "evidence": None if r.evidence is None else jsonable(asdict(r.evidence))}
                 for w, r in v.windows.items()},
        rooms=[jsonable(asdict(r)) for r in v.rooms],
        worst_rooms=[r.room for r in v.worst_rooms],
        worst_devices=[jsonable(asdict(d)) for d in v.worst_devices],
        worst_periods=[jsonable(asdict(p)) for p in v.worst_periods],
        remediation=v.remediation)
    return item


def verdict_dict(verdict: ProfileVerdict) -> dict[str, Any]:
    """A profile verdict as plain JSON types."""
    p = verdict.profile
    return {"profile": p.id, "version": p.version, "title": p.title, "status": verdict.status,
            "evaluated_at": verdict.evaluated_at.isoformat(), "description": p.description,
            "note": p.note, "source": asdict(p.source), "class_size": verdict.class_size,
            "requirements": [requirement_dict(v) for v in verdict.requirements],
            "room_capacity": [capacity_dict(c) for c in verdict.capacity]}

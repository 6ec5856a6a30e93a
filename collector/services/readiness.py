"""Readiness: judge a site's measurements against a requirement profile. Pure: no I/O.

For each requirement the matching values are its metric with the chosen per-report
summary (``stat``, e.g. the p50 of one latency run) to a target whose host matches the
requirement's glob patterns. Across those values a ``statistic`` (p95, mean…) gives the
site value; the same statistic per device gives each device's own value.

- fewer than ``min_samples`` values → **unknown**, with the reason and the latest
  failure reasons of matching probe runs (too little data is never a pass);
- the site value fails the comparison → **fail**;
- it passes, but a device's own value fails, or it is within ``warn_within_pct`` of the
  threshold → **warn**;
- otherwise → **pass**.

A profile's overall verdict is the worst of its ``must`` requirements: fail if any fails,
else unknown if any is unknown, else warn if any warns, else pass.

Percentiles interpolate linearly between closest ranks (numpy's default, Excel's
PERCENTILE.INC): p95 of [1..20] is 19.05.
"""

from __future__ import annotations

import fnmatch
import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from collector.services.profiles import Profile, Requirement
from collector.services.rows import FailureRow, MeasurementRow

Status = Literal["pass", "warn", "fail", "unknown"]
WORST_DEVICES = 5
FAILURE_REASONS = 3

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


@dataclass(frozen=True)
class DeviceValue:
    agent_id: str
    room: str
    value: float
    samples: int
    passes: bool


@dataclass(frozen=True)
class Evidence:
    statistic: str
    value: float
    unit: str
    samples: int
    devices: int
    failing_devices: int
    first: datetime
    last: datetime
    worst_devices: tuple[DeviceValue, ...]


@dataclass(frozen=True)
class RequirementVerdict:
    requirement: Requirement
    status: Status
    reason: str
    evidence: Evidence | None


@dataclass(frozen=True)
class ProfileVerdict:
    profile: Profile
    status: Status
    evaluated_at: datetime
    requirements: tuple[RequirementVerdict, ...]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def statistic(name: str, values: Sequence[float]) -> float:
    if name == "min":
        return min(values)
    if name == "max":
        return max(values)
    if name == "mean":
        return math.fsum(values) / len(values)
    if name.startswith("p") and name[1:].isdigit():
        return percentile(values, float(name[1:]))
    raise ValueError(f"unknown statistic {name!r}")


def target_host(target: str | None) -> str | None:
    """The host of a probe target: a URL, ``host``, ``host:port`` or ``[v6]:port``."""
    if not target:
        return None
    text = target.strip()
    if "://" in text:
        host = urlsplit(text).hostname
    elif text.startswith("["):
        host = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        host = text.split(":", 1)[0]
    else:
        host = text
    return host.rstrip(".").lower() if host else None


def target_matches(target: str | None, patterns: Iterable[str]) -> bool:
    """No patterns: only target-less rows match (device data). Else the host must match one."""
    patterns = tuple(patterns)
    host = target_host(target)
    if not patterns:
        return host is None
    return host is not None and any(fnmatch.fnmatchcase(host, p) for p in patterns)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _describe(req: Requirement) -> str:
    where = f" to {', '.join(req.targets)}" if req.targets else ""
    return f"{req.metric} ({req.stat}){where}"


def _failure_note(req: Requirement, failures: Iterable[FailureRow]) -> str:
    latest: dict[tuple[str, str | None], FailureRow] = {}
    for f in sorted(failures, key=lambda f: f.time, reverse=True):
        if target_matches(f.target, req.targets):
            latest.setdefault((f.probe, f.target), f)
    notes = []
    for f in list(latest.values())[:FAILURE_REASONS]:
        to = f" to {f.target}" if f.target else ""
        notes.append(f"{f.probe}{to} {f.status}: {f.reason}")
    return "; recent probe failures: " + "; ".join(notes) if notes else ""


def _device_values(req: Requirement, rows: Sequence[MeasurementRow]) -> list[DeviceValue]:
    by_agent: dict[str, list[MeasurementRow]] = defaultdict(list)
    for row in rows:
        by_agent[row.agent_id].append(row)
    compare = _OPS[req.op]
    out = []
    for agent_id, own in by_agent.items():
        value = statistic(req.statistic, [r.value for r in own if r.value is not None])
        out.append(DeviceValue(agent_id, own[-1].room, value, len(own),
                               compare(value, req.threshold)))
    worst_is_high = req.op in ("<", "<=")
    return sorted(out, key=lambda d: (d.value, d.agent_id), reverse=worst_is_high)


def evaluate_requirement(req: Requirement, rows: Iterable[MeasurementRow],
                         failures: Iterable[FailureRow]) -> RequirementVerdict:
    matching = sorted(
        (r for r in rows if r.metric == req.metric and r.stat == req.stat and r.unit == req.unit
         and r.value is not None and target_matches(r.target, req.targets)),
        key=lambda r: r.time)
    n = len(matching)
    if n < req.min_samples:
        have = f"no measurements of {_describe(req)} yet" if n == 0 else \
            f"only {n} samples of {_describe(req)}"
        reason = f"{have}; at least {req.min_samples} needed" + _failure_note(req, failures)
        return RequirementVerdict(req, "unknown", reason, None)
    value = statistic(req.statistic, [r.value for r in matching if r.value is not None])
    devices = _device_values(req, matching)
    failing = [d for d in devices if not d.passes]
    evidence = Evidence(req.statistic, value, req.unit, n, len(devices), len(failing),
                        matching[0].time, matching[-1].time, tuple(devices[:WORST_DEVICES]))
    site = (f"{req.statistic} of {_describe(req)} is {_fmt(value)} {req.unit} over {n} samples "
            f"from {len(devices)} device(s); needs {req.op} {_fmt(req.threshold)} {req.unit}")
    if not _OPS[req.op](value, req.threshold):
        return RequirementVerdict(req, "fail", site, evidence)
    if failing:
        worst = failing[0]
        return RequirementVerdict(req, "warn", (
            f"{site}; but {len(failing)} of {len(devices)} device(s) fail on their own, worst "
            f"{worst.agent_id} in {worst.room}: {_fmt(worst.value)} {req.unit}"), evidence)
    margin = req.warn_within_pct
    if margin is not None and abs(req.threshold - value) <= abs(req.threshold) * margin / 100:
        return RequirementVerdict(req, "warn", f"{site}; within {_fmt(margin)}% of the threshold",
                                  evidence)
    return RequirementVerdict(req, "pass", site, evidence)


def overall(verdicts: Iterable[RequirementVerdict]) -> Status:
    musts = {v.status for v in verdicts if v.requirement.severity == "must"}
    for status in ("fail", "unknown", "warn"):
        if status in musts:
            return status  # type: ignore[return-value]
    return "pass" if musts else "unknown"


def evaluate(profile: Profile, rows: Iterable[MeasurementRow], failures: Iterable[FailureRow],
             now: datetime) -> ProfileVerdict:
    """Judge ``rows`` (one site's measurements) against every requirement of ``profile``."""
    rows = list(rows)
    failures = list(failures)
    verdicts = tuple(evaluate_requirement(r, rows, failures) for r in profile.requirements)
    return ProfileVerdict(profile, overall(verdicts), now, verdicts)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def profile_dict(profile: Profile) -> dict[str, Any]:
    out: dict[str, Any] = _jsonable(asdict(profile))
    return out


def verdict_dict(verdict: ProfileVerdict) -> dict[str, Any]:
    """A profile verdict as plain JSON types."""
    reqs = []
    for v in verdict.requirements:
        item: dict[str, Any] = _jsonable(asdict(v.requirement))
        item.update(status=v.status, reason=v.reason,
                    evidence=None if v.evidence is None else _jsonable(asdict(v.evidence)))
        reqs.append(item)
    p = verdict.profile
    return {"profile": p.id, "title": p.title, "status": verdict.status,
            "evaluated_at": verdict.evaluated_at.isoformat(), "description": p.description,
            "note": p.note, "source": asdict(p.source), "requirements": reqs}

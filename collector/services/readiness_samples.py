"""The values a requirement judges, and the statistics taken over them. Pure: no I/O.

A requirement's **samples** are the rows of its metric with its per-report summary
(``stat``, e.g. the p50 of one latency run) and unit, with a value, to a target whose host
matches the requirement's glob patterns (no patterns: only target-less device rows), in
its time **window**:

- ``in_lesson``: rows taken during a timetabled period (``in_lesson`` True);
- ``out_of_hours``: rows taken outside any period (``in_lesson`` False);
- ``all``: every row, including rows that arrived before the site had a timetable
  (``in_lesson`` None, which belong to neither of the other two windows).

Rows that answer a coordinated room test (``trigger`` "job") are left out: every device of
the room was downloading at once, so each one's goodput is its share of the room, not a
single-device figure. Room tests count through :mod:`collector.services.capacity`.

Percentiles interpolate linearly between closest ranks (numpy's default, Excel's
PERCENTILE.INC): p95 of [1..20] is 19.05. ``share`` is the percentage of samples meeting
the requirement's comparison. The rank and the interpolation (:func:`percentile_ranks`,
:func:`interpolate`) are shared with the numpy statistics of the fast path
(:mod:`collector.services.sample_stats`), so both give the very same floats; numpy's own
``np.percentile`` computes the interpolation differently and differs in the last bit
for about one list in twelve.
"""

from __future__ import annotations

import fnmatch
import math
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Literal
from urllib.parse import urlsplit

from collector.services.profiles import Requirement
from collector.services.rows import MeasurementRow

Window = Literal["in_lesson", "out_of_hours", "all"]
WINDOWS: tuple[Window, ...] = ("in_lesson", "out_of_hours")
ROOM_TEST_TRIGGER = "job"

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "==": operator.eq,
}


@dataclass(frozen=True)
class Sample:
    value: float
    time: datetime
    agent_id: str
    room: str
    period: str | None
    in_lesson: bool | None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    return _percentile_sorted(sorted(values), q)


def percentile_ranks(n: int, q: float) -> tuple[int, int, float]:
    """The q-th percentile of ``n`` sorted values lies between the values at these two
    0-based ranks: (low, high, weight of the high one)."""
    pos = (n - 1) * q / 100
    low = math.floor(pos)
    return low, min(low + 1, n - 1), pos - low


def interpolate(low_value: float, high_value: float, weight: float) -> float:
    """The percentile from its two order statistics (see :func:`percentile_ranks`)."""
    return low_value + (high_value - low_value) * weight


def _percentile_sorted(ordered: Sequence[float], q: float) -> float:
    low, high, weight = percentile_ranks(len(ordered), q)
    return interpolate(ordered[low], ordered[high], weight)


def percentile_of(name: str) -> float | None:
    """q of a ``pNN`` statistic name (None: not a percentile)."""
    return float(name[1:]) if name.startswith("p") and name[1:].isdigit() else None


def statistic(name: str, values: Sequence[float]) -> float:
    """``min``, ``max``, ``mean`` or ``pNN`` of ``values`` (not empty)."""
    if not values:
        raise ValueError(f"{name} of no values")
    if name == "min":
        return min(values)
    if name == "max":
        return max(values)
    if name == "mean":
        return math.fsum(values) / len(values)
    q = percentile_of(name)
    if q is not None:
        return percentile(values, q)
    raise ValueError(f"unknown statistic {name!r}")


def share_pct(values: Iterable[float], op: str, threshold: float) -> float:
    """The percentage of ``values`` (not empty) for which ``value op threshold`` holds."""
    compare = OPS[op]
    total = meeting = 0
    for v in values:
        total += 1
        meeting += compare(v, threshold)
    if not total:
        raise ValueError("share of no values")
    return 100.0 * meeting / total


def requirement_value(req: Requirement, values: Sequence[float], threshold: float) -> float:
    """The requirement's statistic of ``values``: a share (%) or a summary in its unit."""
    if req.statistic == "share":
        return share_pct(values, req.op, threshold)
    return statistic(req.statistic, values)


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


def group_by_metric(rows: Iterable[MeasurementRow]) -> dict[str, list[MeasurementRow]]:
    """Rows by metric, in their order: one pass, shared by every requirement."""
    out: dict[str, list[MeasurementRow]] = defaultdict(list)
    for row in rows:
        out[row.metric].append(row)
    return out


def matching_rows(req: Requirement, metric_rows: Iterable[MeasurementRow]) -> list[MeasurementRow]:
    """The rows of ``req``'s metric that it judges, in every window (see the module text).

    ``metric_rows`` may hold other metrics too; rows of one metric (from
    :func:`group_by_metric`) skip nothing but the checks.
    """
    hosts: dict[str | None, bool] = {}
    out = []
    for r in metric_rows:
        if (r.value is None or r.metric != req.metric or r.stat != req.stat
                or r.unit != req.unit or r.trigger == ROOM_TEST_TRIGGER):
            continue
        ok = hosts.get(r.target)
        if ok is None:
            ok = hosts[r.target] = target_matches(r.target, req.targets)
        if ok:
            out.append(r)
    return out


GroupKey = tuple[str, str, str, str | None]
"""(metric, stat, unit, target)"""


def group_matches(key: GroupKey, req: Requirement) -> bool:
    """Whether ``req`` judges the rows of group ``key``."""
    return (key[0] == req.metric and key[1] == req.stat and key[2] == req.unit
            and target_matches(key[3], req.targets))


class SampleIndex:
    """Rows that can be samples, grouped once by (metric, stat, unit, target).

    :meth:`matching` then gives any requirement's rows by joining whole groups, so many
    requirements (of many profiles) cost one pass over the rows, not one each.
    """

    def __init__(self, rows: Iterable[MeasurementRow]) -> None:
        groups: dict[GroupKey, list[MeasurementRow]] = defaultdict(list)
        for r in rows:
            if r.value is not None and r.trigger != ROOM_TEST_TRIGGER:
                groups[_GROUP(r)].append(r)
        self.groups = dict(groups)

    def matching_groups(self, req: Requirement) -> tuple[GroupKey, ...]:
        """The groups whose rows ``req`` judges: requirements with the same groups judge
        the same samples, whatever their target patterns."""
        return tuple(key for key in self.groups if group_matches(key, req))

    def rows_of(self, keys: Iterable[GroupKey]) -> list[MeasurementRow]:
        out: list[MeasurementRow] = []
        for key in keys:
            out += self.groups[key]
        return out

    def matching(self, req: Requirement) -> list[MeasurementRow]:
        """The same rows as :func:`matching_rows` (grouped, not in time order)."""
        return self.rows_of(self.matching_groups(req))

    def of_metrics(self, metrics: Iterable[str]) -> dict[str, list[MeasurementRow]]:
        """Every sample row of ``metrics``, whatever its stat or target, by metric."""
        wanted = set(metrics)
        out: dict[str, list[MeasurementRow]] = {}
        for (metric, *_rest), rows in self.groups.items():
            if metric in wanted:
                out.setdefault(metric, []).extend(rows)
        return out


_GROUP = attrgetter("metric", "stat", "unit", "target")


def window_rows(rows: Sequence[MeasurementRow], window: str) -> list[MeasurementRow]:
    """The rows of ``window``: ``all``, ``in_lesson`` or ``out_of_hours``."""
    if window == "all":
        return list(rows)
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; known: all, {', '.join(WINDOWS)}")
    want = window == "in_lesson"
    return [r for r in rows if r.in_lesson is want]


def requirement_samples(req: Requirement, rows: Iterable[MeasurementRow],
                        window: str | None = None) -> list[Sample]:
    """The samples ``req`` judges in ``window`` (default: the requirement's own window)."""
    chosen = window_rows(matching_rows(req, rows), window or req.window)
    return [Sample(r.value, r.time, r.agent_id, r.room, r.period, r.in_lesson)
            for r in chosen if r.value is not None]


@dataclass
class RoomSamples:
    """One room's samples by device, and the newest sample's time."""

    devices: dict[str, list[float]]
    last: datetime

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.devices.values())


def room_samples(rows: Iterable[MeasurementRow]) -> dict[str, RoomSamples]:
    """Rows (with values) grouped by room, then device."""
    out: dict[str, RoomSamples] = {}
    for r in rows:
        if r.value is None:
            continue
        room = out.get(r.room)
        if room is None:
            room = out[r.room] = RoomSamples({}, r.time)
        room.devices.setdefault(r.agent_id, []).append(r.value)
        if r.time > room.last:
            room.last = r.time
    return out

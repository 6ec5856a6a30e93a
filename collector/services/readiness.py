"""Readiness: judge a site's measurements against a requirement profile. Pure: no I/O.

For each requirement (see :mod:`collector.services.readiness_samples` for which samples
count and :mod:`collector.services.readiness_rules` for the verdict rules at each scope):

- fewer than ``min_samples`` samples in the requirement's window → **unknown**, with why:
  too few samples, no timetable (an ``in_lesson`` / ``out_of_hours`` window needs the
  site's timetable to place samples), or the probe never ran, with the latest failure
  reasons of matching probe runs. Too little data is never a pass, so with no data every
  requirement is unknown;
- else **fail** / **warn** / **pass** by the rules of its scope;
- beside the verdict, the same judgement in lessons and out of hours (``windows``), the
  rooms (each with its status), the worst rooms, devices and periods, and for fail or
  warn plain-language remediation (:mod:`collector.services.remediation`).

A profile's overall verdict is the worst of its ``must`` requirements: fail if any fails,
else unknown if any is unknown, else warn if any warns, else pass.

Performance: rows are grouped once per :func:`evaluate` by (metric, stat, unit, target);
requirements that judge the same groups share one partition, split once by cell
(:mod:`collector.services.readiness_partition`: Python lists, the reference). A site's
report instead hands :func:`evaluate_prepared` samples gathered by the database
(:mod:`collector.services.sample_query`) as numpy cells
(:mod:`collector.services.sample_cells`), whose statistics are bit for bit the same
(:mod:`collector.services.sample_stats`): at 10M measurements (1.9M samples, every
built-in profile) judging takes about 0.5 s instead of 4 s. Remediation reads the Wi-Fi
load of one room at a time (:class:`WifiSource`), not the whole site's per requirement.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Protocol

from collector.services.capacity import RoomCapacityVerdict, room_capacity
from collector.services.profiles import Profile, Requirement
from collector.services.readiness_partition import Partition, SamplePartition
from collector.services.readiness_rules import (
    WINDOW_PHRASE,
    Assessment,
    DeviceValue,
    Evidence,
    PeriodValue,
    RoomVerdict,
    Setting,
    Status,
    assess,
    describe,
)
from collector.services.readiness_samples import (
    WINDOWS,
    GroupKey,
    RoomSamples,
    Sample,
    SampleIndex,
    percentile,
    requirement_samples,
    statistic,
    target_host,
    target_matches,
)
from collector.services.remediation import WIFI_CONTEXT_METRICS, Finding, remediation, room_wifi
from collector.services.room_tests import RoomCapacity
from collector.services.rows import FailureRow, MeasurementRow

__all__ = [
    "DeviceValue", "Evidence", "PeriodValue", "PreparedSite", "ProfileVerdict",
    "RequirementVerdict", "RoomVerdict", "Sample", "SampleSource", "Status", "WifiRows",
    "WifiSource", "WindowResult",
    "evaluate", "evaluate_many", "evaluate_prepared", "evaluate_requirement", "overall",
    "percentile", "requirement_samples", "statistic", "target_host", "target_matches",
    "timetable_hint",
]

FAILURE_REASONS = 3
_ROOM, _AGENT = attrgetter("room"), attrgetter("agent_id")


def timetable_hint(site: str) -> str:
    site_arg = shlex.quote(site)
    return f"set a timetable: classprobe collector timetable set --site {site_arg} FILE.toml"


@dataclass(frozen=True)
class WindowResult:
    """The requirement judged on one window's samples alone."""

    window: str
    status: Status
    reason: str
    evidence: Evidence | None


@dataclass(frozen=True)
class RequirementVerdict:
    requirement: Requirement
    status: Status
    reason: str
    evidence: Evidence | None
    windows: Mapping[str, WindowResult] = field(default_factory=dict)
    """``in_lesson`` and ``out_of_hours``, side by side."""
    rooms: tuple[RoomVerdict, ...] = ()
    worst_rooms: tuple[RoomVerdict, ...] = ()
    worst_devices: tuple[DeviceValue, ...] = ()
    worst_periods: tuple[PeriodValue, ...] = ()
    remediation: str | None = None


@dataclass(frozen=True)
class ProfileVerdict:
    profile: Profile
    status: Status
    evaluated_at: datetime
    requirements: tuple[RequirementVerdict, ...]
    class_size: int = 30
    capacity: tuple[RoomCapacityVerdict, ...] = ()
    """Per room, how many students of this product it carries (per-student needs only)."""


class SampleSource(Protocol):
    """Where requirements find their samples: rows in memory (:class:`_RowSamples`) or
    cells the database grouped (:mod:`collector.services.sample_query`)."""

    def matching_groups(self, req: Requirement) -> tuple[GroupKey, ...]:
        """The (metric, stat, unit, target) groups ``req`` judges."""
        ...

    def partition(self, keys: tuple[GroupKey, ...]) -> SamplePartition:
        """The samples of those groups, split by cell."""
        ...


@dataclass(frozen=True)
class _RowSamples:
    index: SampleIndex

    def matching_groups(self, req: Requirement) -> tuple[GroupKey, ...]:
        return self.index.matching_groups(req)

    def partition(self, keys: tuple[GroupKey, ...]) -> Partition:
        return Partition(self.index.rows_of(keys))


class WifiSource(Protocol):
    """The Wi-Fi load samples (:data:`WIFI_CONTEXT_METRICS`) remediation quotes."""

    def of_room(self, room: str) -> Mapping[str, Sequence[MeasurementRow]]:
        """One room's, by metric: rows, or any objects with their ``room``, ``period``,
        ``stat`` and ``value`` (all remediation reads)."""
        ...


@dataclass
class WifiRows:
    """Wi-Fi load rows by metric, split by room on first use (remediation reads one
    room's for each failing requirement, not the whole site's)."""

    by_metric: Mapping[str, Sequence[MeasurementRow]]
    by_room: dict[str, dict[str, list[MeasurementRow]]] | None = None

    def of_room(self, room: str) -> Mapping[str, Sequence[MeasurementRow]]:
        if self.by_room is None:
            self.by_room = {}
            for metric, rows in self.by_metric.items():
                for r in rows:
                    self.by_room.setdefault(r.room, {}).setdefault(metric, []).append(r)
        return self.by_room.get(room, {})


@dataclass(frozen=True)
class PreparedSite:
    """A site's measurements as the evaluation reads them, however they were gathered.

    The same as :func:`evaluate_many` derives from rows: ``rooms`` and ``devices`` are
    those of every row (any metric handed in, any stat, with or without a value), ``wifi``
    the samples of :data:`WIFI_CONTEXT_METRICS`.
    """

    samples: SampleSource
    wifi: WifiSource
    rooms: frozenset[str]
    devices: frozenset[str]


@dataclass(frozen=True)
class _Site:
    """What every requirement of one evaluation shares (across profiles too)."""

    index: SampleSource
    wifi: WifiSource
    """The Wi-Fi load rows remediation quotes."""
    failures: Sequence[FailureRow]
    rooms: frozenset[str]
    devices: frozenset[str]
    capacities: Sequence[RoomCapacity]
    name: str
    """The site's name, for the commands a reason suggests."""
    partitions: dict[tuple[GroupKey, ...], SamplePartition] = field(default_factory=dict)
    """Requirements that judge the same samples share one partition."""

    def partition(self, req: Requirement) -> SamplePartition:
        keys = self.index.matching_groups(req)
        part = self.partitions.get(keys)
        if part is None:
            part = self.partitions[keys] = self.index.partition(keys)
        return part

    def room_samples(self, req: Requirement) -> Mapping[str, RoomSamples]:
        return self.partition(req).select(req.window).by_room


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


def _too_few(req: Requirement, part: SamplePartition, window: str,
             failures: Sequence[FailureRow], site: str) -> str:
    n, total = part.count(window), part.count("all")
    untagged = part.untagged()
    if total == 0:
        return (f"no measurements of {describe(req)} yet; at least {req.min_samples} needed"
                + _failure_note(req, failures))
    if window != "all" and untagged == total:
        return (f"no measurements of {describe(req)} can be placed{WINDOW_PHRASE[window]}: "
                f"the site had no timetable when its {total} sample(s) arrived; "
                f"{timetable_hint(site)}")
    have = f"no measurements of {describe(req, window)} yet" if n == 0 else \
        f"only {n} samples of {describe(req, window)}"
    note = ""
    if window != "all" and untagged:
        note = (f"; {untagged} more arrived before the site had a timetable, so they count "
                f"in no window ({timetable_hint(site)})")
    return f"{have}; at least {req.min_samples} needed{note}" + _failure_note(req, failures)


def _has_room_tests(req: Requirement, capacities: Sequence[RoomCapacity]) -> bool:
    return req.per_student and any(
        (c.download_mbps if req.metric == "download_mbps" else c.upload_mbps) is not None
        for c in capacities)


def _judge_window(req: Requirement, part: SamplePartition, window: str, setting: Setting,
                  failures: Sequence[FailureRow]) -> Assessment:
    n = part.count(window)
    if n < req.min_samples and not _has_room_tests(req, setting.capacities):
        return Assessment("unknown", _too_few(req, part, window, failures, setting.site),
                          None)
    return assess(req, part.select(window), setting)


def _remediation(req: Requirement, a: Assessment, site: _Site, setting: Setting) -> str | None:
    if a.status not in ("fail", "warn") or a.evidence is None:
        return None
    room = a.worst_rooms[0] if a.worst_rooms else None
    period = a.worst_periods[0] if a.worst_periods else None
    failing = [d for d in a.worst_devices if not d.passes]
    device = failing[0] if failing else (a.worst_devices[0] if a.worst_devices else None)
    room_name = room.room if room else (device.room if device else None)
    wifi = room_wifi(site.wifi.of_room(room_name), room_name, period.period if period else None) \
        if room_name is not None else None
    return remediation(Finding(
        requirement=req, status=a.status, value=a.evidence.value, unit=a.evidence.unit,
        threshold=setting.threshold, room=room_name,
        room_value=room.value if room else None,
        period=period.period if period else None, period_value=period.value if period else None,
        devices=a.evidence.devices,
        failing_devices=a.evidence.failing_devices or len(failing),
        worst_device=device.agent_id if device else None,
        worst_device_value=device.value if device else None, wifi=wifi,
        class_size=setting.class_size, basis=room.basis if room else "", site=site.name))


def _verdict(req: Requirement, site: _Site, class_size: int) -> RequirementVerdict:
    part = site.partition(req)
    threshold = req.threshold * class_size if req.per_student else req.threshold
    setting = Setting(threshold, class_size, site.rooms, site.devices, site.capacities,
                      site.name)
    main = _judge_window(req, part, req.window, setting, site.failures)
    windows = {w: main if w == req.window else _judge_window(req, part, w, setting,
                                                             site.failures)
               for w in WINDOWS}
    return RequirementVerdict(
        requirement=req, status=main.status, reason=main.reason, evidence=main.evidence,
        windows={w: WindowResult(w, a.status, a.reason, a.evidence) for w, a in windows.items()},
        rooms=main.rooms, worst_rooms=main.worst_rooms, worst_devices=main.worst_devices,
        worst_periods=main.worst_periods,
        remediation=_remediation(req, main, site, setting))


def overall(verdicts: Iterable[RequirementVerdict]) -> Status:
    musts = {v.status for v in verdicts if v.requirement.severity == "must"}
    for status in ("fail", "unknown", "warn"):
        if status in musts:
            return status  # type: ignore[return-value]
    return "pass" if musts else "unknown"


def _site_of(rows: Sequence[MeasurementRow], failures: Sequence[FailureRow],
             capacities: Sequence[RoomCapacity], name: str) -> _Site:
    index = SampleIndex(rows)
    return _Site(_RowSamples(index), WifiRows(index.of_metrics(WIFI_CONTEXT_METRICS)), failures,
                 frozenset(map(_ROOM, rows)), frozenset(map(_AGENT, rows)), capacities, name)


def evaluate_requirement(req: Requirement, rows: Iterable[MeasurementRow],
                         failures: Iterable[FailureRow], *, class_size: int = 30,
                         capacities: Sequence[RoomCapacity] = (),
                         site: str = "SITE") -> RequirementVerdict:
    """One requirement on one site's rows (see :func:`evaluate`)."""
    return _verdict(req, _site_of(list(rows), list(failures), capacities, site), class_size)


def _evaluate(profile: Profile, site: _Site, now: datetime,
              class_size: int | None) -> ProfileVerdict:
    size = class_size or profile.class_size
    verdicts = tuple(_verdict(r, site, size) for r in profile.requirements)
    capacity = tuple(room_capacity(profile, site.capacities, (), size,
                                   samples_for=site.room_samples, site=site.name))
    return ProfileVerdict(profile, overall(verdicts), now, verdicts, size, capacity)


def evaluate(profile: Profile, rows: Sequence[MeasurementRow] | Iterable[MeasurementRow],
             failures: Iterable[FailureRow], now: datetime, *, class_size: int | None = None,
             capacities: Sequence[RoomCapacity] = (), site: str = "SITE") -> ProfileVerdict:
    """Judge ``rows`` (one site's measurements) against every requirement of ``profile``.

    ``class_size`` overrides the profile's for per-student requirements; ``capacities``
    are the rooms' latest room tests; ``site`` names the site in suggested commands.
    """
    return evaluate_many([profile], rows, failures, now, class_size=class_size,
                         capacities=capacities, site=site)[0]


def evaluate_many(profiles: Iterable[Profile],
                  rows: Sequence[MeasurementRow] | Iterable[MeasurementRow],
                  failures: Iterable[FailureRow], now: datetime, *,
                  class_size: int | None = None,
                  capacities: Sequence[RoomCapacity] = (),
                  site: str = "SITE") -> tuple[ProfileVerdict, ...]:
    """:func:`evaluate` for several profiles on the same rows, grouping them once."""
    rows = rows if isinstance(rows, list) else list(rows)
    shared = _site_of(rows, list(failures), capacities, site)
    return tuple(_evaluate(p, shared, now, class_size) for p in profiles)


def evaluate_prepared(profiles: Iterable[Profile], prepared: PreparedSite,
                      failures: Iterable[FailureRow], now: datetime, *,
                      class_size: int | None = None,
                      capacities: Sequence[RoomCapacity] = (),
                      site: str = "SITE") -> tuple[ProfileVerdict, ...]:
    """:func:`evaluate_many` on samples gathered elsewhere (the same verdicts as on the
    rows they came from)."""
    shared = _Site(prepared.samples, prepared.wifi, list(failures), prepared.rooms,
                   prepared.devices, capacities, site)
    return tuple(_evaluate(p, shared, now, class_size) for p in profiles)

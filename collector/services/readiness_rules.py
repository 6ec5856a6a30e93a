"""The verdict rules for one requirement in one time window. Pure: no I/O.

:func:`assess` judges a requirement's samples (already matched, see
:mod:`collector.services.readiness_samples`) at its **scope**:

- ``site``: the statistic of every sample is judged; it passes → **warn** if some devices
  fail on their own (a failing room nearly always has a failing device, since a room's
  statistic lies about within its devices'; rooms are shown in ``rooms``), or the value
  is within ``warn_within_pct`` of the threshold; else **pass**;
- ``room`` / ``device``: each room / device must pass; the requirement takes the worst of
  them (fail > unknown > warn > pass). A room or device with fewer than ``min_samples``
  samples is **unknown**: it is not shown to pass. Every room of the site (any room in
  the rows handed to the evaluation) counts, so a room whose devices never measured
  this is unknown too;
- ``per_student``: judged per room, whatever the scope, against the room's total
  (:mod:`collector.services.capacity`) with threshold × class size.

``share``: the value is the % of samples meeting ``op threshold``; it passes when that is at
least ``share_min_pct`` (the warn margin is taken of ``share_min_pct``). ``==`` has no
warn margin. Fewer than ``min_samples`` samples in all → **unknown**, never pass.

The rules read a window's samples through its levels (site, devices, rooms, periods:
:class:`readiness_partition.Level`): counts and the requirement's statistic per key, as
Python lists or numpy arrays alike. A site has hundreds of devices and a report judges
each requirement in three windows, so only the devices shown become objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal, NamedTuple

from collector.services.capacity import RoomTotal, room_totals
from collector.services.profiles import Requirement
from collector.services.readiness_partition import SITE, Level, Window
from collector.services.readiness_samples import OPS
from collector.services.room_tests import RoomCapacity

Status = Literal["pass", "warn", "fail", "unknown"]
SEVERITY: dict[str, int] = {"pass": 0, "warn": 1, "unknown": 2, "fail": 3}
WORST = 5
WINDOW_PHRASE = {"all": "", "in_lesson": " in lessons", "out_of_hours": " out of hours"}


@dataclass(frozen=True)
class DeviceValue:
    agent_id: str
    room: str
    value: float
    samples: int
    passes: bool


@dataclass(frozen=True)
class RoomVerdict:
    room: str
    status: Status
    value: float | None
    samples: int
    devices: int
    basis: str = "samples"
    """"samples", or for per-student requirements "room test" / "estimate from …"."""
    measured_at: datetime | None = None
    """Per-student requirements: when the room's total was measured."""


@dataclass(frozen=True)
class PeriodValue:
    period: str
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
    rooms: int
    first: datetime
    last: datetime
    threshold: float
    """The threshold used: per-student thresholds are multiplied by the class size."""
    judged: str
    """What ``value`` is: "site", "worst room 'R12'", "worst device abc…"."""
    failing_devices: int = 0
    failing_rooms: int = 0


@dataclass(frozen=True)
class Assessment:
    status: Status
    reason: str
    evidence: Evidence | None
    rooms: tuple[RoomVerdict, ...] = ()
    worst_rooms: tuple[RoomVerdict, ...] = ()
    worst_devices: tuple[DeviceValue, ...] = ()
    worst_periods: tuple[PeriodValue, ...] = ()


@dataclass(frozen=True)
class Setting:
    """What the rules need beyond the samples."""

    threshold: float
    class_size: int
    all_rooms: frozenset[str]
    all_devices: frozenset[str]
    capacities: Sequence[RoomCapacity] = ()
    site: str = "SITE"


def fmt(value: float) -> str:
    return f"{value:.6g}"


def with_unit(value: float, unit: str) -> str:
    return fmt(value) if unit in ("bool", "count") else f"{fmt(value)} {unit}"


def describe(req: Requirement, window: str = "all") -> str:
    where = f" to {', '.join(req.targets)}" if req.targets else ""
    return f"{req.metric} ({req.stat}){where}{WINDOW_PHRASE[window]}"


def needs(req: Requirement, threshold: float) -> str:
    if req.statistic == "share" and not req.per_student:
        return (f"needs at least {fmt(req.share_min_pct or 0.0)} % of samples "
                f"{req.op} {with_unit(threshold, req.unit)}")
    return f"needs {req.op} {with_unit(threshold, req.unit)}"


def value_unit(req: Requirement) -> str:
    return "%" if req.statistic == "share" and not req.per_student else req.unit


def judge(req: Requirement, value: float, threshold: float) -> Status:
    """pass / warn (within the margin) / fail for one value of the requirement's statistic."""
    if req.statistic == "share" and not req.per_student:
        goal, ok = req.share_min_pct or 0.0, value >= (req.share_min_pct or 0.0)
    else:
        goal, ok = threshold, OPS[req.op](value, threshold)
    if not ok:
        return "fail"
    margin = req.warn_within_pct
    if margin is not None and req.op != "==" and abs(goal - value) <= abs(goal) * margin / 100:
        return "warn"
    return "pass"


def badness(req: Requirement, value: float, threshold: float) -> float:
    """Larger is worse: for sorting rooms, devices and periods worst first."""
    if req.statistic == "share" and not req.per_student:
        return -value
    if req.op == "==":
        return abs(value - threshold)
    return value if req.op in ("<", "<=") else -value


def worst_of(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=SEVERITY.__getitem__, default="unknown")


def _group_verdicts(req: Requirement, level: Level, universe: Iterable[str],
                    threshold: float) -> dict[str, tuple[Status, float | None, int]]:
    counts, values = level.counts(), level.values(req, threshold)
    out: dict[str, tuple[Status, float | None, int]] = {}
    for key in sorted(set(universe) | set(counts)):
        n, value = counts.get(key, 0), values.get(key)
        if value is None or n < req.min_samples:
            out[key] = ("unknown", value, n)
        else:
            out[key] = (judge(req, value, threshold), value, n)
    return out


def _unknown_note(kind: str, unknown: list[tuple[str, int]], min_samples: int) -> str:
    names = ", ".join(f"{k} ({n})" for k, n in unknown[:3])
    more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
    return (f"{len(unknown)} {kind}(s) with fewer than {min_samples} samples are unknown: "
            f"{names}{more}")


class _Devices(NamedTuple):
    """The window's devices judged alone: the worst few, and how many fail."""

    worst: tuple[DeviceValue, ...]
    total: int
    failing: int
    worst_failing: DeviceValue | None


def _devices(req: Requirement, win: Window, thr: float) -> _Devices:
    """Ranks every device by value, but builds a :class:`DeviceValue` only for the
    ones shown (a site has hundreds of devices; a report judges each many times)."""
    values, counts = win.devices.values(req, thr), win.devices.counts()
    ranked = sorted(values, key=lambda a: (-badness(req, values[a], thr), a))
    failing = [a for a in ranked if judge(req, values[a], thr) == "fail"]

    def device(a: str) -> DeviceValue:
        return DeviceValue(a, win.device_room[a], values[a], counts[a],
                           judge(req, values[a], thr) != "fail")

    return _Devices(tuple(map(device, ranked[:WORST])), len(ranked), len(failing),
                    device(failing[0]) if failing else None)


def assess(req: Requirement, win: Window, setting: Setting) -> Assessment:
    """The verdict of ``req`` on the samples of one window (at least one sample)."""
    thr = setting.threshold
    devices = _devices(req, win, thr)
    counts = win.periods.counts()
    periods = sorted(
        (PeriodValue(p, v, counts[p], judge(req, v, thr) != "fail")
         for p, v in win.periods.values(req, thr).items()),
        key=lambda p: (-badness(req, p.value, thr), p.period))
    if req.per_student:
        totals = room_totals(req, win.by_room, setting.capacities, setting.site)
        rooms = _per_student_rooms(req, win, totals, setting)
    else:
        rooms = [RoomVerdict(room, st, v, n, _devices_in(win, room)) for room, (st, v, n) in
                 _group_verdicts(req, win.rooms, setting.all_rooms, thr).items()]
    judged_rooms = [r for r in rooms if r.value is not None and r.status != "unknown"]
    worst_rooms = sorted(judged_rooms, key=lambda r: (-badness(req, r.value or 0.0, thr), r.room))
    base = Assessment("unknown", "", None, tuple(rooms), tuple(worst_rooms[:WORST]),
                      devices.worst, tuple(periods[:WORST]))
    if req.per_student or req.scope == "room":
        return _by_groups(req, win, base, "room", {r.room: (r.status, r.value, r.samples)
                                                   for r in rooms}, setting)
    if req.scope == "device":
        groups = _group_verdicts(req, win.devices, setting.all_devices, thr)
        return _by_groups(req, win, base, "device", groups, setting)
    return _site(req, win, base, devices, worst_rooms, setting)


def _devices_in(win: Window, room: str) -> int:
    return win.room_devices.get(room, 0)


def _per_student_rooms(req: Requirement, win: Window, totals: Mapping[str, RoomTotal],
                       setting: Setting) -> list[RoomVerdict]:
    out = []
    counts = win.rooms.counts()
    for room in sorted(setting.all_rooms | set(totals) | set(counts)):
        total = totals.get(room)
        n = counts.get(room, 0)
        if total is None:
            out.append(RoomVerdict(room, "unknown", None, n, _devices_in(win, room)))
        else:
            out.append(RoomVerdict(room, judge(req, total.total_mbps, setting.threshold),
                                   total.total_mbps, n or total.samples,
                                   total.devices, total.basis, total.measured_at))
    return out


def _evidence(req: Requirement, win: Window, value: float, setting: Setting, judged: str,
              failing_devices: int = 0, failing_rooms: int = 0,
              rooms: Sequence[RoomVerdict] = ()) -> Evidence:
    times = [r.measured_at for r in rooms if r.measured_at is not None]
    if win.span is not None:
        times += list(win.span)
    statistic = "room total" if req.per_student else req.statistic
    return Evidence(statistic, value, value_unit(req), win.count, len(win.devices.counts()),
                    len(win.rooms.counts()), min(times), max(times), setting.threshold, judged,
                    failing_devices, failing_rooms)


def _site(req: Requirement, win: Window, base: Assessment, devices: _Devices,
          worst_rooms: Sequence[RoomVerdict], setting: Setting) -> Assessment:
    thr, n, unit = setting.threshold, win.count, value_unit(req)
    value = win.site.values(req, thr)[SITE]
    failing_rooms = [r for r in worst_rooms if r.status == "fail"]
    evidence = _evidence(req, win, value, setting, "site", devices.failing, len(failing_rooms))
    if req.statistic == "share":
        site = (f"{fmt(value)} % of {n} samples of {describe(req, win.name)} from "
                f"{devices.total} device(s) are {req.op} {with_unit(thr, req.unit)}; "
                f"{needs(req, thr)}")
    else:
        site = (f"{req.statistic} of {describe(req, win.name)} is {with_unit(value, unit)} over "
                f"{n} samples from {devices.total} device(s); {needs(req, thr)}")
    status = judge(req, value, thr)
    done = replace(base, evidence=evidence)
    if status == "fail":
        return replace(done, status="fail", reason=site)
    worst = devices.worst_failing
    if worst is not None:
        return replace(done, status="warn", reason=(
            f"{site}; but {devices.failing} of {devices.total} device(s) fail on their own, "
            f"worst {worst.agent_id} in {worst.room}: {with_unit(worst.value, unit)}"))
    if status == "warn":
        return replace(done, status="warn", reason=(
            f"{site}; within {fmt(req.warn_within_pct or 0.0)}% of the threshold"))
    return replace(done, status="pass", reason=site)


def _by_groups(req: Requirement, win: Window, base: Assessment, kind: str,
               groups: Mapping[str, tuple[Status, float | None, int]],
               setting: Setting) -> Assessment:
    thr, unit = setting.threshold, value_unit(req)
    judged = {k: g for k, g in groups.items() if g[0] != "unknown" and g[1] is not None}
    unknown = sorted((k, n) for k, (st, _v, n) in groups.items() if st == "unknown")
    failing = [k for k, g in judged.items() if g[0] == "fail"]
    status = worst_of(g[0] for g in groups.values())
    if req.per_student:
        how = (f"room total of {describe(req, win.name)} against "
               f"{with_unit(thr, req.unit)} ({with_unit(req.threshold, req.unit)} per student "
               f"× class of {setting.class_size})")
    else:
        how = f"{req.statistic} of {describe(req, win.name)} judged per {kind}"
    parts = [how, f"{len(failing)} of {len(groups)} {kind}(s) fail"]
    if unknown:
        parts.append(_unknown_note(kind, unknown, req.min_samples)
                     + ("" if not req.per_student else " and have no room test"))
    if not judged:
        return replace(base, status="unknown", reason="; ".join(parts))
    worst_key = min(judged, key=lambda k: (-badness(req, judged[k][1] or 0.0, thr), k))
    worst_value = judged[worst_key][1]
    assert worst_value is not None
    if req.per_student:
        room = next(r for r in base.rooms if r.room == worst_key)
        detail = f"{room.basis}, {room.devices} device(s)"
        parts.append(f"worst {kind} {worst_key}: {with_unit(worst_value, unit)} ({detail})")
    else:
        parts.append(f"worst {kind} {worst_key}: {with_unit(worst_value, unit)} over "
                     f"{judged[worst_key][2]} samples")
    parts.append(needs(req, thr))
    label = worst_key if kind == "room" else worst_key[:12]
    evidence = _evidence(req, win, worst_value, setting, f"worst {kind} {label}",
                         failing_devices=len(failing) if kind == "device" else 0,
                         failing_rooms=len(failing) if kind == "room" else 0, rooms=base.rooms)
    return replace(base, status=status, reason="; ".join(parts), evidence=evidence)

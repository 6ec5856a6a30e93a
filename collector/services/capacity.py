"""Room capacity: how many students of a product a room's network carries at once. Pure.

A per-student requirement (``per_student = true``, on ``download_mbps`` or
``upload_mbps``) states what each student needs; a room's **total** is what the room's
devices move together:

- **room test** (preferred): the total of the room's latest complete coordinated room
  test (:func:`collector.services.room_tests.latest_room_capacity`: every live device of
  the room transferring at the same moment);
- **estimate from single-device tests** (rougher, labelled so): with no room test for
  that direction, the best device's goodput in the room (the requirement's statistic of
  each device's samples, the median for ``share``; at least ``min_samples`` samples in
  the room). It assumes the devices share one bottleneck (the access point or the
  uplink) that a single device can fill, so one device's goodput is the room's total.
  It overstates when Wi-Fi airtime, not the link, runs out as devices join, and
  understates when the device itself was the limit.

``students_supported = floor(total / per-student need)``, the smaller over download and
upload when the profile needs both (None while a needed direction has no total).
Several products used in the same period share one room total: their per-student needs
add up (:func:`combined_capacity`).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from collector.services.profiles import Profile, Requirement
from collector.services.readiness_samples import (
    RoomSamples,
    group_by_metric,
    matching_rows,
    room_samples,
    statistic,
    window_rows,
)
from collector.services.room_tests import RoomCapacity
from collector.services.rows import MeasurementRow

PER_STUDENT_METRICS = {"download_mbps": "download", "upload_mbps": "upload"}
ROOM_TEST = "room test"
ESTIMATE = "estimate from single-device tests"


@dataclass(frozen=True)
class RoomTotal:
    """What one room's devices move together in one direction, and how that is known."""

    room: str
    metric: str
    total_mbps: float
    basis: str  # ROOM_TEST | ESTIMATE
    measured_at: datetime
    samples: int
    devices: int
    note: str


@dataclass(frozen=True)
class RoomCapacityVerdict:
    room: str
    students_supported: int | None
    basis: str
    per_student_mbps: float
    total_mbps: float | None
    measured_at: datetime | None
    note: str
    metric: str = "download_mbps"
    """The limiting direction: the one that supports the fewest students."""
    class_size: int = 30
    missing: tuple[str, ...] = ()
    """Directions the profile needs that have no total in this room."""
    measured_supports: int | None = None
    """The students the measured directions alone support (set even when some are missing)."""


def _room_test_total(cap: RoomCapacity, metric: str) -> RoomTotal | None:
    total = cap.download_mbps if metric == "download_mbps" else cap.upload_mbps
    if total is None:
        return None
    direction = PER_STUDENT_METRICS[metric]
    note = (f"room test {cap.job_id[:8]} at {cap.measured_at:%Y-%m-%d %H:%M} UTC: "
            f"{cap.devices} device(s) in {direction} at once moved {total:.4g} Mbps in total")
    return RoomTotal(cap.room, metric, total, ROOM_TEST, cap.measured_at, 0, cap.devices, note)


def room_test_hint(site: str, room: str) -> str:
    """The command that schedules a room test (shell-quoted names)."""
    return f"classprobe collector room-test --site {shlex.quote(site)} --room {shlex.quote(room)}"


def _estimate(req: Requirement, room: str, found: RoomSamples, site: str) -> RoomTotal | None:
    n = found.count
    if n < req.min_samples:
        return None
    stat = "p50" if req.statistic == "share" else req.statistic
    best_agent, best = max(((a, statistic(stat, v)) for a, v in found.devices.items()),
                           key=lambda item: (item[1], item[0]))
    direction = PER_STUDENT_METRICS[req.metric]
    note = (f"estimate from single-device tests: the best device's {stat} {direction} "
            f"goodput ({best:.4g} Mbps, device {best_agent[:8]}; {n} samples from "
            f"{len(found.devices)} device(s)) taken as the room's total. It assumes the room's "
            f"devices share one bottleneck (access point or uplink) that one device can "
            f"fill; it overstates when Wi-Fi airtime runs out as devices join and "
            f"understates when the device was the limit. A room test measures it: "
            f"{room_test_hint(site, room)}")
    return RoomTotal(room, req.metric, best, ESTIMATE, found.last, n, len(found.devices), note)


def room_totals(req: Requirement, samples: Mapping[str, RoomSamples],
                capacities: Iterable[RoomCapacity], site: str = "SITE") -> dict[str, RoomTotal]:
    """Each room's total for ``req``'s direction: a room test, else an estimate.

    ``samples``: the requirement's matching samples in its window, by room (see
    :func:`collector.services.readiness_samples.room_samples`). Rooms with neither are
    left out.
    """
    out: dict[str, RoomTotal] = {}
    for cap in capacities:
        found = _room_test_total(cap, req.metric)
        if found is not None:
            out[cap.room] = found
    for room, own in samples.items():
        if room not in out:
            estimate = _estimate(req, room, own, site)
            if estimate is not None:
                out[room] = estimate
    return out


def students(total: float, per_student: float) -> int:
    """floor(total / per_student), immune to float noise (30 / 0.1 is 300, not 299)."""
    return math.floor(round(total / per_student, 9))


def per_student_needs(profile: Profile) -> dict[str, Requirement]:
    """The profile's most demanding per-student requirement per metric."""
    needs: dict[str, Requirement] = {}
    for req in profile.requirements:
        if req.per_student and req.metric in PER_STUDENT_METRICS:
            held = needs.get(req.metric)
            if held is None or req.threshold > held.threshold:
                needs[req.metric] = req
    return needs


SamplesFor = Callable[[Requirement], Mapping[str, RoomSamples]]
"""A requirement's samples in its window by room (lets the evaluation share its work)."""


def _totals_for(needs: Mapping[str, Requirement], rows: Iterable[MeasurementRow],
                capacities: Sequence[RoomCapacity],
                samples_for: SamplesFor | None, site: str) -> dict[str, dict[str, RoomTotal]]:
    """metric -> room -> total, each from its requirement's samples in its window."""
    if samples_for is None:
        by_metric = group_by_metric(rows)

        def samples_for(req: Requirement) -> Mapping[str, RoomSamples]:
            return room_samples(window_rows(matching_rows(req, by_metric.get(req.metric, [])),
                                            req.window))

    return {metric: room_totals(req, samples_for(req), capacities, site)
            for metric, req in needs.items()}


def _verdicts(need_mbps: Mapping[str, float], totals: Mapping[str, Mapping[str, RoomTotal]],
              class_size: int, what: str) -> list[RoomCapacityVerdict]:
    rooms = sorted({room for per_room in totals.values() for room in per_room})
    out = []
    for room in rooms:
        known = [(students(t.total_mbps, need_mbps[m]), m, t) for m, per_room in totals.items()
                 if (t := per_room.get(room)) is not None]
        missing = [PER_STUDENT_METRICS[m] for m in need_mbps if room not in totals[m]]
        fewest, metric, total = min(known, key=lambda k: (k[0], k[1]))
        direction = PER_STUDENT_METRICS[metric]
        notes = [f"{what}: {need_mbps[metric]:.4g} Mbps per student ({direction})", total.note]
        if missing:
            notes.append(f"{' and '.join(missing)} not measured in this room: the number of "
                         f"students is unknown until it is ({direction} alone "
                         f"supports {fewest})")
        out.append(RoomCapacityVerdict(
            room=room, students_supported=None if missing else fewest, basis=total.basis,
            per_student_mbps=need_mbps[metric], total_mbps=total.total_mbps,
            measured_at=total.measured_at, note="; ".join(notes), metric=metric,
            class_size=class_size, missing=tuple(missing), measured_supports=fewest))
    return out


def room_capacity(profile: Profile, capacities: Sequence[RoomCapacity],
                  rows: Iterable[MeasurementRow], class_size: int | None = None, *,
                  samples_for: SamplesFor | None = None,
                  site: str = "SITE") -> list[RoomCapacityVerdict]:
    """Per room, how many students of ``profile`` its network carries at once.

    Empty when the profile states no per-student bandwidth. ``samples_for`` (optional)
    replaces matching ``rows`` per requirement.
    """
    needs = per_student_needs(profile)
    if not needs:
        return []
    totals = _totals_for(needs, rows, capacities, samples_for, site)
    need_mbps = {m: r.threshold for m, r in needs.items()}
    return _verdicts(need_mbps, totals, class_size or profile.class_size, profile.id)


def combined_capacity(profiles: Sequence[Profile], capacities: Sequence[RoomCapacity],
                      rows: Iterable[MeasurementRow], class_size: int | None = None,
                      site: str = "SITE") -> list[RoomCapacityVerdict]:
    """Per room, how many students using all ``profiles`` at once it carries.

    Each student needs the sum of the products' per-student needs per direction; the room
    total comes from the most demanding product's samples (its window and targets).
    """
    rows = list(rows)
    need_mbps: dict[str, float] = {}
    leading: dict[str, Requirement] = {}
    parts: dict[str, list[str]] = {}
    for profile in profiles:
        for metric, req in per_student_needs(profile).items():
            need_mbps[metric] = need_mbps.get(metric, 0.0) + req.threshold
            parts.setdefault(metric, []).append(f"{profile.id} {req.threshold:.4g}")
            if metric not in leading or req.threshold > leading[metric].threshold:
                leading[metric] = req
    if not need_mbps:
        return []
    totals = _totals_for(leading, rows, capacities, None, site)
    size = class_size or max(p.class_size for p in profiles)
    what = " + ".join(p.id for p in profiles) + " together (" + "; ".join(
        f"{PER_STUDENT_METRICS[m]} " + " + ".join(parts[m]) for m in sorted(parts)) + ")"
    return _verdicts(need_mbps, totals, size, what)

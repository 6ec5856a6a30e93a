"""A requirement's matching samples, split once for every window and grouping. Pure.

Each sample lands in one **cell**: (``in_lesson`` tag, device, room, period), its value
and time kept there. A window (a union of tags) then groups its cells' values by device,
room and period as **levels** (:class:`Level`): each key's sample count and the
requirement's statistic per key. Time spans are taken once per cell.

Two implementations share :class:`Window`: :class:`Partition` here builds Python lists
from rows (the reference, :class:`ListLevel`, statistics by
:func:`readiness_samples.requirement_value`); :mod:`collector.services.sample_cells`
builds numpy arrays from cells the database grouped (the fast path, the same numbers:
:mod:`collector.services.sample_stats`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from operator import attrgetter
from typing import Protocol

from collector.services.profiles import Requirement
from collector.services.readiness_samples import RoomSamples, requirement_value
from collector.services.rows import MeasurementRow

TAGS: dict[str, tuple[bool | None, ...]] = {
    "all": (True, False, None), "in_lesson": (True,), "out_of_hours": (False,)}

Cell = tuple[bool | None, str, str, str | None]
_CELL = attrgetter("in_lesson", "agent_id", "room", "period")


SITE = ""
"""The one key of a window's ``site`` level."""


class Level(Protocol):
    """A window's samples grouped one way (by device, room or period; or all: ``site``)."""

    def counts(self) -> Mapping[str, int]:
        """Samples per key (only keys with samples)."""
        ...

    def values(self, req: Requirement, threshold: float) -> Mapping[str, float]:
        """The requirement's statistic (or share) of each key's samples."""
        ...


@dataclass(frozen=True)
class ListLevel:
    """A level as Python lists: the reference statistics."""

    groups: Mapping[str, list[float]]

    def counts(self) -> dict[str, int]:
        return {key: len(vals) for key, vals in self.groups.items()}

    def values(self, req: Requirement, threshold: float) -> dict[str, float]:
        return {key: requirement_value(req, vals, threshold) for key, vals in self.groups.items()}


@dataclass
class Window:
    """The samples of one window, grouped."""

    name: str
    count: int
    site: Level
    """Every sample of the window, under the one key :data:`SITE` (none when empty)."""
    devices: Level
    rooms: Level
    periods: Level
    """Samples with a period only."""
    span: tuple[datetime, datetime] | None
    device_room: Mapping[str, str]
    """Each device's room (its latest, should a device have moved)."""
    room_devices: Mapping[str, int]
    """The devices with samples in each room."""
    room_samples: Callable[[], Mapping[str, RoomSamples]]
    """Builds :attr:`by_room` (only per-student requirements read it)."""

    @cached_property
    def by_room(self) -> Mapping[str, RoomSamples]:
        """Samples by room, then device (per-student room totals)."""
        return self.room_samples()


class SamplePartition(Protocol):
    """A requirement's samples, ready to be judged in any window."""

    def count(self, window: str) -> int:
        """Samples in ``window``."""
        ...

    def untagged(self) -> int:
        """Samples that arrived while the site had no timetable."""
        ...

    def select(self, window: str) -> Window:
        """The window's samples, grouped."""
        ...


class WindowMemo:
    """:meth:`select` builds each window once (``_build``), then remembers it."""

    _windows: dict[str, Window]

    def select(self, window: str) -> Window:
        """The window's samples, grouped."""
        found = self._windows.get(window)
        if found is None:
            found = self._windows[window] = self._build(window)
        return found

    def _build(self, window: str) -> Window:
        raise NotImplementedError


class Partition(WindowMemo):
    """Rows' values and time spans by cell; :meth:`select` builds a :class:`Window` of
    Python lists (the reference the fast path matches)."""

    def __init__(self, rows: list[MeasurementRow]) -> None:
        """``rows`` all carry a value (see :func:`readiness_samples.matching_rows`)."""
        values: dict[Cell, list[float]] = defaultdict(list)
        times: dict[Cell, list[datetime]] = defaultdict(list)
        for r in rows:
            cell = _CELL(r)
            values[cell].append(r.value)  # type: ignore[arg-type]
            times[cell].append(r.time)
        self.values = dict(values)
        self.spans = {cell: (min(ts), max(ts)) for cell, ts in times.items()}
        self.counts: dict[bool | None, int] = defaultdict(int)
        for (tag, *_rest), own in self.values.items():
            self.counts[tag] += len(own)
        self._windows = {}

    def count(self, window: str) -> int:
        return sum(self.counts[t] for t in TAGS[window])

    def untagged(self) -> int:
        """Rows that arrived while the site had no timetable."""
        return self.counts[None]

    def _build(self, window: str) -> Window:
        tags = TAGS[window]
        values: list[float] = []
        devices: dict[str, list[float]] = defaultdict(list)
        rooms: dict[str, list[float]] = defaultdict(list)
        periods: dict[str, list[float]] = defaultdict(list)
        latest: dict[str, tuple[datetime, str]] = {}
        by_room: dict[str, RoomSamples] = {}
        spans = []
        for cell, vals in self.values.items():
            tag, agent, room, period = cell
            if tag not in tags:
                continue
            values += vals
            devices[agent] += vals
            rooms[room] += vals
            if period is not None:
                periods[period] += vals
            lo, hi = self.spans[cell]
            spans.append((lo, hi))
            here = by_room.get(room)
            if here is None:
                here = by_room[room] = RoomSamples({}, hi)
            here.devices.setdefault(agent, []).extend(vals)
            here.last = max(here.last, hi)
            if agent not in latest or hi > latest[agent][0]:
                latest[agent] = (hi, room)
        span = (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None
        return Window(window, len(values), ListLevel({SITE: values} if values else {}),
                      ListLevel(dict(devices)), ListLevel(dict(rooms)), ListLevel(dict(periods)),
                      span, {a: room for a, (_t, room) in latest.items()},
                      {room: len(found.devices) for room, found in by_room.items()},
                      lambda: by_room)

"""A requirement's matching rows, split once for every window and grouping. Pure.

Each row lands in one **cell**: (``in_lesson`` tag, device, room, period), its value and
time appended there. That is the only per-row Python work; windows (a union of tags),
devices, rooms and periods are then merged from the few cells' value lists, and time
spans are taken once per cell. On a million rows this is about twice as fast as
appending every value to four groups per row.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from collector.services.readiness_samples import RoomSamples
from collector.services.rows import MeasurementRow

TAGS: dict[str, tuple[bool | None, ...]] = {
    "all": (True, False, None), "in_lesson": (True,), "out_of_hours": (False,)}

Cell = tuple[bool | None, str, str, str | None]
_CELL = attrgetter("in_lesson", "agent_id", "room", "period")


@dataclass(frozen=True)
class Window:
    """The samples of one window, grouped."""

    name: str
    values: list[float]
    devices: dict[str, list[float]]
    rooms: dict[str, list[float]]
    periods: dict[str, list[float]]
    span: tuple[datetime, datetime] | None
    device_room: dict[str, str]
    """Each device's room (its latest, should a device have moved)."""
    by_room: dict[str, RoomSamples]
    """Samples by room, then device (per-student room totals)."""


class Partition:
    """Values and time spans by cell; :meth:`select` builds a :class:`Window`."""

    def __init__(self, rows: list[MeasurementRow]) -> None:
        """``rows`` all carry a value (see :func:`readiness_samples.matching_rows`)."""
        values: dict[Cell, list[float]] = defaultdict(list)
        times: dict[Cell, list[datetime]] = defaultdict(list)
        for r in rows:
            cell = _CELL(r)
            values[cell].append(r.value)  # type: ignore[arg-type]
            times[cell].append(r.time)
        self._set_cells(dict(values), {cell: (min(ts), max(ts)) for cell, ts in times.items()})

    @classmethod
    def from_cells(cls, values: dict[Cell, list[float]],
                   spans: dict[Cell, tuple[datetime, datetime]]) -> Partition:
        """A partition of cells grouped elsewhere (e.g. by the database): each cell's
        values (any order) and (first, last) time. The same as from the cells' rows."""
        part = cls.__new__(cls)
        part._set_cells(values, spans)
        return part

    def _set_cells(self, values: dict[Cell, list[float]],
                   spans: dict[Cell, tuple[datetime, datetime]]) -> None:
        self.values = values
        self.spans = spans
        self.counts: dict[bool | None, int] = defaultdict(int)
        for (tag, *_rest), own in self.values.items():
            self.counts[tag] += len(own)
        self._windows: dict[str, Window] = {}

    def count(self, window: str) -> int:
        return sum(self.counts[t] for t in TAGS[window])

    def untagged(self) -> int:
        """Rows that arrived while the site had no timetable."""
        return self.counts[None]

    def select(self, window: str) -> Window:
        """The window's samples, grouped (built once per window, then remembered)."""
        found = self._windows.get(window)
        if found is None:
            found = self._windows[window] = self._build(window)
        return found

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
        return Window(window, values, dict(devices), dict(rooms), dict(periods), span,
                      {a: room for a, (_t, room) in latest.items()}, by_room)

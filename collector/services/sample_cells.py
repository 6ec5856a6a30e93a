"""Sample cells as numpy arrays: the fast path's partitions, windows and levels. Pure.

A **cell** is the samples of one group (metric, stat, unit, target) that share
(``in_lesson`` tag, device, room, period); :mod:`collector.services.sample_query` fetches
them (on PostgreSQL grouped by the database). :class:`CellTable` holds every fetched cell
as columns: key codes, first/last time (µs since the epoch) and sample count per cell,
and all values, cell after cell. :class:`ArrayPartition` is a requirement's groups out of
it and builds :class:`readiness_partition.Window` objects whose levels
(:class:`ArrayLevel`) take their statistics with :mod:`collector.services.sample_stats`:
the same numbers as the Python lists of :class:`readiness_partition.Partition`, with no
Python object per sample. Per window the work is a mask and a few linear passes; the one
sort (of the partition's values) is shared by every window and level. :class:`CellSamples`
is the table as the evaluation's sample source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from collector.services.profiles import Requirement
from collector.services.readiness_partition import SITE, TAGS, Window, WindowMemo
from collector.services.readiness_samples import GroupKey, RoomSamples, group_matches
from collector.services.sample_stats import SortedGroups, value_order

Arr = npt.NDArray[Any]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TAG_CODE: dict[bool | None, int] = {False: 0, True: 1, None: 2}
TAG_OF_CODE: tuple[bool | None, ...] = (False, True, None)
WINDOW_TAGS: dict[str, list[int]] = {w: [TAG_CODE[t] for t in tags] for w, tags in TAGS.items()}
NO_PERIOD = -1


def to_micros(time: datetime) -> int:
    """µs since the epoch of an aware datetime (exact)."""
    return (time - EPOCH) // timedelta(microseconds=1)


def from_micros(micros: int) -> datetime:
    """The UTC datetime ``micros`` µs after the epoch (as the database column reads it)."""
    return EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True)
class CellTable:
    """Every fetched cell, as columns; ``groups`` gives each group's cells (a range of
    the cell columns) and values (a range of ``values``). Codes index ``agents``,
    ``rooms`` and ``periods`` (period :data:`NO_PERIOD`: none); tags: :data:`TAG_CODE`."""

    groups: Mapping[GroupKey, tuple[slice, slice]]
    tag: Arr
    agent: Arr
    room: Arr
    period: Arr
    first: Arr
    last: Arr
    size: Arr
    values: Arr
    agents: Sequence[str]
    rooms: Sequence[str]
    periods: Sequence[str]

    @classmethod
    def from_columns(cls, keys: Sequence[GroupKey], group: Sequence[int],
                     tag: Sequence[bool | None], agent: Sequence[str], room: Sequence[str],
                     period: Sequence[str | None], first: Sequence[int], last: Sequence[int],
                     size: Sequence[int], values: Arr) -> CellTable:
        """Cells given column by column: ``group`` indexes ``keys``; ``values`` holds
        each cell's ``size`` values, cell after cell. Cells may come in any group order."""
        agents, agent_codes = _codes(agent)
        rooms, room_codes = _codes(room)
        periods, period_codes = _codes(period)
        columns: list[Arr] = [
            np.asarray([TAG_CODE[t] for t in tag], np.int8), agent_codes, room_codes,
            period_codes, np.asarray(first, np.int64), np.asarray(last, np.int64),
            np.asarray(size, np.int64)]
        return cls._assemble(keys, np.asarray(group, np.int64), columns, values,
                             (agents, rooms, periods))

    @classmethod
    def from_blocks(cls, keys: Sequence[GroupKey], group: Sequence[int],
                    tag: Sequence[bool | None], room: Sequence[str],
                    period: Sequence[str | None], size: Sequence[int], agent: Arr,
                    agents: Sequence[str], time: Arr, values: Arr) -> CellTable:
        """Samples given by **block** (one group's samples of one tag, room and period):
        each block's ``size`` samples come one after another in ``agent`` (codes into
        ``agents``), ``time`` (µs since the epoch) and ``values``. Split into cells by
        device here: one sort of (block, device) for all."""
        rooms, room_codes = _codes(room)
        periods, period_codes = _codes(period)
        block_columns: list[Arr] = [np.asarray(group, np.int64),
                                    np.asarray([TAG_CODE[t] for t in tag], np.int8),
                                    room_codes, period_codes]
        n_agents = max(1, len(agents))
        key = np.repeat(np.arange(len(block_columns[0]), dtype=np.int64),
                        np.asarray(size, np.int64)) * n_agents + agent
        order = np.argsort(key, kind="stable")
        key = key[order]
        starts = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        block, cell_agent = np.divmod(key[starts], n_agents)
        times = time[order]
        g, tags, room_c, period_c = (c[block] for c in block_columns)
        columns = [tags, cell_agent, room_c, period_c,
                   np.minimum.reduceat(times, starts) if len(starts) else times[:0],
                   np.maximum.reduceat(times, starts) if len(starts) else times[:0],
                   np.diff(np.concatenate((starts, [len(key)])))]
        return cls._assemble(keys, g, columns, values[order], (agents, rooms, periods))

    @classmethod
    def _assemble(cls, keys: Sequence[GroupKey], g: Arr, columns: list[Arr], values: Arr,
                  names: tuple[Sequence[str], Sequence[str], Sequence[str]]) -> CellTable:
        """``columns``: tag, agent, room, period, first, last, size codes per cell."""
        if len(g) > 1 and bool(np.any(g[1:] < g[:-1])):
            order = np.argsort(g, kind="stable")
            values = values[_value_index(columns[-1], order)]
            g, columns = g[order], [c[order] for c in columns]
        sizes = columns[-1]
        cell_ends = np.searchsorted(g, np.arange(len(keys)), side="right")
        value_ends = np.concatenate(([0], np.cumsum(sizes)))
        groups: dict[GroupKey, tuple[slice, slice]] = {}
        start = 0
        for i, key in enumerate(keys):
            end = int(cell_ends[i])
            if end > start:
                groups[key] = (slice(start, end), slice(int(value_ends[start]),
                                                        int(value_ends[end])))
            start = end
        tags, a, r, p, f, la, s = columns
        return cls(groups, tags.astype(np.int8), a, r, p, f, la, s, values, *names)


def _codes(column: Sequence[str | None]) -> tuple[list[str], Arr]:
    """Each distinct non-None value's code (in order of appearance); None is -1."""
    index: dict[str | None, int] = {None: NO_PERIOD}
    codes = [index.setdefault(v, len(index) - 1) for v in column]
    names = [v for v in index if v is not None]
    return names, np.asarray(codes, np.int64)  # type: ignore[misc]


def _value_index(sizes: Arr, cells: Arr) -> Arr:
    """The indices of the values of ``cells`` (in that order) in the cell-ordered values."""
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    picked = sizes[cells]
    total = int(picked.sum())
    offsets = np.repeat(starts[cells] - np.concatenate(([0], np.cumsum(picked)[:-1])), picked)
    return offsets + np.arange(total, dtype=np.int64)  # type: ignore[no-any-return]


@dataclass
class ArrayLevel:
    """One grouping of a window's samples (see :class:`readiness_partition.Level`)."""

    names: Sequence[str]
    values_all: Arr
    order: Arr
    """The window's samples, in ascending value order."""
    labels: Arr | None
    """Each sample's key (None: one key, :data:`readiness_partition.SITE`)."""
    cache: dict[tuple[object, ...], dict[str, float]] = field(default_factory=dict)

    @cached_property
    def groups(self) -> SortedGroups:
        return SortedGroups.build(self.values_all, self.order, self.labels)

    @cached_property
    def keys(self) -> list[str]:
        if self.labels is None:
            return [SITE] * len(self.groups)
        return [self.names[i] for i in self.groups.labels.tolist()]

    @cached_property
    def _counts(self) -> dict[str, int]:
        return dict(zip(self.keys, self.groups.counts.tolist(), strict=True))

    def counts(self) -> dict[str, int]:
        return self._counts

    def values(self, req: Requirement, threshold: float) -> dict[str, float]:
        share = req.statistic == "share"
        key = (req.statistic, req.op, threshold) if share else (req.statistic,)
        found = self.cache.get(key)
        if found is None:
            stats = self.groups.share(req.op, threshold) if share \
                else self.groups.statistic(req.statistic)
            found = self.cache[key] = dict(zip(self.keys, stats, strict=True))
        return found


class ArrayPartition(WindowMemo):
    """The cells of some groups of a :class:`CellTable` (see the module text)."""

    def __init__(self, table: CellTable, keys: Sequence[GroupKey]) -> None:
        spans = [table.groups[k] for k in keys if k in table.groups]
        self.table = table

        def pick(column: Arr, which: int) -> Arr:
            parts = [column[s[which]] for s in spans]
            if len(parts) == 1:
                return parts[0]
            return np.concatenate(parts) if parts else column[:0]

        self.tag, self.agent, self.room, self.period, self.first, self.last, self.size = (
            pick(c, 0) for c in (table.tag, table.agent, table.room, table.period,
                                 table.first, table.last, table.size))
        self.values: Arr = pick(table.values, 1)  # type: ignore[assignment]
        self.tag_counts = np.bincount(self.tag, weights=self.size, minlength=3).astype(np.int64)
        self._windows = {}

    def count(self, window: str) -> int:
        return int(sum(self.tag_counts[t] for t in WINDOW_TAGS[window]))

    def untagged(self) -> int:
        return int(self.tag_counts[TAG_CODE[None]])

    @cached_property
    def _order(self) -> Arr:
        return value_order(self.values)

    def _per_sample(self, column: Arr) -> Arr:
        return np.repeat(column, self.size)

    @cached_property
    def _agent_labels(self) -> Arr:
        return self._per_sample(self.agent)

    @cached_property
    def _room_labels(self) -> Arr:
        return self._per_sample(self.room)

    @cached_property
    def _period_labels(self) -> Arr:
        return self._per_sample(self.period)

    def _build(self, window: str) -> Window:
        t = self.table
        in_window = np.isin(self.tag, WINDOW_TAGS[window])
        cells = np.flatnonzero(in_window)
        order = self._order
        if len(cells) < len(self.tag):
            order = order[np.repeat(in_window, self.size)[order]]

        def level(names: Sequence[str], labels: Arr | None) -> ArrayLevel:
            return ArrayLevel(names, self.values, order, labels)

        span = None
        if len(cells):
            span = (from_micros(int(self.first[cells].min())),
                    from_micros(int(self.last[cells].max())))
        return Window(window, len(order), level([SITE], None), level(t.agents, self._agent_labels),
                      level(t.rooms, self._room_labels), level(t.periods, self._period_labels),
                      span, self._device_rooms(cells), self._room_devices(cells),
                      lambda: self._room_samples(cells))

    def _device_rooms(self, cells: Arr) -> dict[str, str]:
        """Each device's room in its latest cell. (Should two of a device's cells end in
        the same microsecond, which no real device does, the one that began first, as
        rows in time order would have it.)"""
        newest_first = cells[np.lexsort((self.first[cells], -self.last[cells]))]
        agents, first = np.unique(self.agent[newest_first], return_index=True)
        rooms = self.room[newest_first[first]]
        return {self.table.agents[a]: self.table.rooms[r]
                for a, r in zip(agents.tolist(), rooms.tolist(), strict=True)}

    def _room_devices(self, cells: Arr) -> dict[str, int]:
        pairs = np.unique(self.room[cells] * len(self.table.agents) + self.agent[cells])
        rooms, counts = np.unique(pairs // max(1, len(self.table.agents)), return_counts=True)
        return {self.table.rooms[r]: n for r, n in zip(rooms.tolist(), counts.tolist(),
                                                         strict=True)}

    def _room_samples(self, cells: Arr) -> dict[str, RoomSamples]:
        """Samples by room, then device, as Python lists (per-student requirements)."""
        out: dict[str, RoomSamples] = {}
        ends = np.cumsum(self.size)
        starts = ends - self.size
        values = self.values
        for c in cells.tolist():
            room, agent = self.table.rooms[self.room[c]], self.table.agents[self.agent[c]]
            last = from_micros(int(self.last[c]))
            here = out.get(room)
            if here is None:
                here = out[room] = RoomSamples({}, last)
            here.devices.setdefault(agent, []).extend(values[starts[c]:ends[c]].tolist())
            here.last = max(here.last, last)
        return out


class SampleRow(NamedTuple):
    """The columns of a measurement the evaluation reads (a light MeasurementRow).

    ``trigger`` is always "": room-test rows (trigger "job") are never samples.
    """

    time: datetime
    agent_id: str
    room: str
    target: str | None
    metric: str
    value: float | None
    unit: str
    stat: str
    period: str | None
    in_lesson: bool | None
    trigger: str = ""


class CellSamples:
    """Samples by group, as cells: a :class:`collector.services.readiness.SampleSource`."""

    def __init__(self, table: CellTable) -> None:
        self.table = table

    def matching_groups(self, req: Requirement) -> tuple[GroupKey, ...]:
        return tuple(key for key in self.table.groups if group_matches(key, req))

    def partition(self, keys: tuple[GroupKey, ...]) -> ArrayPartition:
        return ArrayPartition(self.table, keys)

    def rows(self, metrics: Iterable[str]) -> list[SampleRow]:
        """The samples of ``metrics`` as rows, each cell's stamped with the cell's last
        time: enough for :func:`capacity.combined_capacity`, which reads a room's
        devices' values and its newest time."""
        wanted, t = set(metrics), self.table
        ends = np.cumsum(t.size)
        out: list[SampleRow] = []
        for (metric, stat, unit, target), (cells, _values) in t.groups.items():
            if metric not in wanted:
                continue
            for c in range(cells.start, cells.stop):
                period = int(t.period[c])
                cell = (from_micros(int(t.last[c])), t.agents[t.agent[c]], t.rooms[t.room[c]],
                        target, metric)
                tail = (unit, stat, None if period < 0 else t.periods[period],
                        TAG_OF_CODE[t.tag[c]])
                out += [SampleRow(*cell, v, *tail)
                        for v in t.values[ends[c] - t.size[c]:ends[c]].tolist()]
        return out

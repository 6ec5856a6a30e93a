"""The samples a readiness evaluation judges, fetched the fast way.

:func:`measurement_rows` hands the evaluation every column of every row as a
:class:`MeasurementRow`; that is ~10 µs a row before any judging. :func:`prepared_site`
fetches only what :func:`collector.services.readiness.evaluate_prepared` reads, and
gives the same verdicts (``tests/collector/test_sql_evaluation.py`` checks every field):

1. the (metric, stat) pairs the profiles judge, and for each the targets that occur
   (a loose index scan: one index probe per distinct target, not one per row);
2. the targets whose host a requirement's globs match (Python: the same
   :func:`target_matches` the evaluation uses);
3. the samples of those groups (value present, not a coordinated room test, in the
   window) as **cells**: (``in_lesson``, device, room, period) with their values and
   first/last time. On PostgreSQL the database groups them (``GROUP BY`` with
   ``string_agg`` of the values; ``extra_float_digits`` makes the text exact, so
   Python reads back the very same floats); elsewhere (SQLite) the rows stream
   (``yield_per``) into the cells in Python;
4. the devices and rooms of every row of the report's metrics (a room or device with
   none of a requirement's samples is judged unknown, so they must be known), and the
   Wi-Fi load readings remediation quotes, counted by distinct value
   (:class:`WifiReading`).

Why not ``percentile_cont``: PostgreSQL computes the rank as ``fraction × (n - 1)``,
the evaluation as ``(n - 1) × q / 100``; the two differ in the last bit for about a third
of sample counts (e.g. p95 of 4 values), so the interpolated percentile would too, and a
verdict on the threshold could flip. Grouping into cells is exact and moves the per-row
work into the database; the statistics stay in one place (:mod:`readiness_rules`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    String,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.types import NullType
from sqlmodel import col

from collector.models import Agent, Measurement, Report, Room, Site
from collector.services.profiles import Profile
from collector.services.readiness import PreparedSite
from collector.services.readiness_partition import Cell, Partition
from collector.services.readiness_samples import ROOM_TEST_TRIGGER, GroupKey, group_matches
from collector.services.remediation import WIFI_CONTEXT_METRICS
from collector.services.rows import MeasurementRow

YIELD_PER = 20_000
WORK_MEM = "128MB"
M = Measurement.__table__.c  # type: ignore[attr-defined]


class SampleRow(NamedTuple):
    """The columns of a measurement the evaluation reads (a light MeasurementRow).

    ``trigger`` is always "": the queries leave room-test rows (trigger "job") out.
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


class WifiReading(NamedTuple):
    """A Wi-Fi load reading as remediation quotes it (:func:`remediation.room_wifi` reads
    ``room``, ``period``, ``stat`` and ``value`` only)."""

    metric: str
    room: str
    period: str | None
    stat: str
    value: float


Span = tuple[datetime, datetime]


@dataclass
class GroupCells:
    """One (metric, stat, unit, target) group's samples by cell: values and (first, last)."""

    values: dict[Cell, list[float]] = field(default_factory=dict)
    spans: dict[Cell, Span] = field(default_factory=dict)


class CellSamples:
    """Samples by group, then by cell: a :class:`collector.services.readiness.SampleSource`.

    Partitions share the groups' lists (the evaluation never changes them)."""

    def __init__(self, groups: dict[GroupKey, GroupCells]) -> None:
        self.groups = groups

    def matching_groups(self, req: Any) -> tuple[GroupKey, ...]:
        return tuple(key for key in self.groups if group_matches(key, req))

    def partition(self, keys: tuple[GroupKey, ...]) -> Partition:
        if len(keys) == 1:
            only = self.groups[keys[0]]
            return Partition.from_cells(only.values, only.spans)
        values: dict[Cell, list[float]] = {}
        spans: dict[Cell, Span] = {}
        for key in keys:
            group = self.groups[key]
            for cell, vals in group.values.items():
                span = group.spans[cell]
                held = spans.get(cell)
                if held is None:
                    values[cell], spans[cell] = vals, span
                else:  # the same cell in two groups (two targets): merge into a new list
                    values[cell] = values[cell] + vals
                    spans[cell] = (min(held[0], span[0]), max(held[1], span[1]))
        return Partition.from_cells(values, spans)


def judged_pairs(profiles: Iterable[Profile]) -> set[tuple[str, str, str]]:
    """The (metric, stat, unit) triples the profiles' requirements judge."""
    return {(r.metric, r.stat, r.unit) for p in profiles for r in p.requirements}


def _window(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if since is not None:
        out.append(M.time >= since)
    if until is not None:
        out.append(M.time < until)
    return out


def _is_sample(room_tests: Any = None) -> list[ColumnElement[bool]]:
    """A value, and not part of a coordinated room test (see readiness_samples).

    ``room_tests``: a CTE of the room-test reports' ids, when several selects share it."""
    jobs = _room_test_reports()
    if room_tests is not None:
        jobs = select(room_tests.c.id)
    return [M.value.is_not(None), M.report_pk.not_in(jobs.scalar_subquery())]


def _room_test_reports() -> Any:
    return select(col(Report.id)).where(col(Report.trigger) == ROOM_TEST_TRIGGER)


def _targets(session: OrmSession, site_id: int, metric: str, stat: str) -> list[str | None]:
    """The distinct targets of (metric, stat): a loose index scan on
    ix_measurement_site_metric_stat_target (one probe per target; NULL last)."""
    base = (M.site_id == site_id) & (M.metric == metric) & (M.stat == stat)
    step = text(
        "WITH RECURSIVE t(target) AS ("
        " SELECT min(target) FROM measurement WHERE site_id = :s AND metric = :m AND stat = :st"
        " UNION ALL"
        " SELECT (SELECT min(target) FROM measurement WHERE site_id = :s AND metric = :m"
        "  AND stat = :st AND target > t.target) FROM t WHERE t.target IS NOT NULL)"
        " SELECT target FROM t WHERE target IS NOT NULL")
    found: list[str | None] = list(session.execute(
        step, {"s": site_id, "m": metric, "st": stat}).scalars())
    if session.execute(select(literal(1)).where(base, M.target.is_(None)).limit(1)).first():
        found.append(None)
    return found


def _groups(session: OrmSession, site: Site, profiles: Sequence[Profile]) -> list[GroupKey]:
    """The (metric, stat, unit, target) groups some requirement judges (a superset: a
    group may have no samples in the window)."""
    out: list[GroupKey] = []
    for metric, stat, unit in sorted(judged_pairs(profiles)):
        for target in _targets(session, site.id or 0, metric, stat):
            key = (metric, stat, unit, target)
            if any(group_matches(key, r) for p in profiles for r in p.requirements):
                out.append(key)
    return out


SAMPLE_COLUMNS = ("metric", "stat", "unit", "target", "in_lesson", "agent_id", "room_id",
                  "period", "time", "value")
CELL_KEY = SAMPLE_COLUMNS[:8]


def _samples(site: Site, groups: Sequence[GroupKey],
             window: list[ColumnElement[bool]]) -> Any:
    """The sample rows of ``groups``: one simple select per (metric, stat, unit), so each
    is an index range (on PostgreSQL an index-only scan), joined by UNION ALL."""
    by_pair: dict[tuple[str, str, str], list[str | None]] = {}
    for metric, stat, unit, target in groups:
        by_pair.setdefault((metric, stat, unit), []).append(target)
    room_tests = _room_test_reports().cte("room_test_reports")  # one scan of report
    parts = []
    for (metric, stat, unit), targets in by_pair.items():
        named = [t for t in targets if t is not None]
        target_ok = or_(*([M.target.in_(named)] if named else [])
                        + ([M.target.is_(None)] if None in targets else []))
        parts.append(select(*(M[c] for c in SAMPLE_COLUMNS)).where(
            M.site_id == site.id, M.metric == metric, M.stat == stat, M.unit == unit,
            target_ok, *_is_sample(room_tests), *window))
    return union_all(*parts).subquery("samples")


def _tune(session: OrmSession) -> None:
    """PostgreSQL, this transaction: exact float text; plans for the whole result (a
    server-side cursor otherwise favours a fast first row); sorts and hashes in memory."""
    if session.get_bind().dialect.name == "postgresql":
        for setting in ("extra_float_digits = 3", "cursor_tuple_fraction = 1.0",
                        f"work_mem = '{WORK_MEM}'"):
            session.execute(text(f"SET LOCAL {setting}"))


def _room_names(session: OrmSession, site: Site) -> dict[int, str]:
    rooms = Room.__table__.c  # type: ignore[attr-defined]
    query = select(rooms.id, rooms.name).where(rooms.site_id == site.id)
    return {room_id: name for room_id, name in session.execute(query)}


def _cells_in_database(session: OrmSession, samples: Any,
                       rooms: dict[int, str]) -> dict[GroupKey, GroupCells]:
    """GROUP BY cell; the values come back as exact text (see :func:`_tune`). Times come
    raw and go through the column type once per cell (not per row)."""
    keys = [samples.c[c] for c in CELL_KEY]
    query = (select(*keys, type_coerce(func.min(samples.c.time), NullType()),
                    type_coerce(func.max(samples.c.time), NullType()),
                    func.string_agg(samples.c.value.cast(String), literal_column("','")))
             .group_by(*keys))
    dialect = session.get_bind().dialect
    to_time = M.time.type.result_processor(dialect, None) or (lambda v: v)
    out: dict[GroupKey, GroupCells] = {}
    for (metric, stat, unit, target, tag, agent, room_id, period, first, last,
         values) in session.execute(query.execution_options(yield_per=YIELD_PER)):
        group = out.get((metric, stat, unit, target))
        if group is None:
            group = out[(metric, stat, unit, target)] = GroupCells()
        cell = (tag, agent, rooms[room_id], period)
        group.values[cell] = list(map(float, values.split(",")))
        group.spans[cell] = (to_time(first), to_time(last))
    return out


def _cells_in_python(session: OrmSession, samples: Any,
                     rooms: dict[int, str]) -> dict[GroupKey, GroupCells]:
    query = select(*(samples.c[c] for c in SAMPLE_COLUMNS))
    values: dict[tuple[Any, ...], list[float]] = {}
    spans: dict[tuple[Any, ...], list[datetime]] = {}
    for row in session.execute(query.execution_options(yield_per=YIELD_PER)):
        key = row[:8]
        held = values.get(key)
        if held is None:
            values[key], spans[key] = [row[9]], [row[8], row[8]]
            continue
        held.append(row[9])
        span = spans[key]
        if row[8] < span[0]:
            span[0] = row[8]
        elif row[8] > span[1]:
            span[1] = row[8]
    out: dict[GroupKey, GroupCells] = {}
    for key, vals in values.items():
        metric, stat, unit, target, tag, agent, room_id, period = key
        group = out.get((metric, stat, unit, target))
        if group is None:
            group = out[(metric, stat, unit, target)] = GroupCells()
        cell = (tag, agent, rooms[room_id], period)
        group.values[cell] = vals
        first, last = spans[key]
        group.spans[cell] = (first, last)
    return out


def _present(session: OrmSession, site: Site, metrics: Sequence[str],
             window: list[ColumnElement[bool]]) -> tuple[frozenset[str], frozenset[str]]:
    """The rooms and devices with at least one row of ``metrics`` (any stat or value):
    a probe of the agent_id / room_id index per agent and room of the site, not a scan
    of the rows. (Not filtered by site: an agent's and a room's rows are their site's.)"""
    def has_rows(column: Any, ident: Any) -> Any:
        return (select(literal(1)).where(column == ident, M.metric.in_(metrics), *window)
                .limit(1).exists())
    devices = session.execute(select(col(Agent.id)).where(
        col(Agent.site_id) == site.id, has_rows(M.agent_id, col(Agent.id)))).scalars()
    rooms = session.execute(select(col(Room.name)).where(
        col(Room.site_id) == site.id, has_rows(M.room_id, col(Room.id)))).scalars()
    return frozenset(rooms), frozenset(devices)


def sample_rows(session: OrmSession, site: Site, metrics: Iterable[str],
                since: datetime | None = None,
                until: datetime | None = None) -> list[SampleRow]:
    """The sample rows (value present, no room test) of ``metrics`` as light tuples, in
    no particular order (what room capacity across products reads)."""
    rooms = _room_names(session, site)
    _tune(session)
    query = (select(M.time, M.agent_id, M.room_id, M.target, M.metric, M.value, M.unit, M.stat,
                    M.period, M.in_lesson)
             .where(M.site_id == site.id, M.metric.in_(list(metrics)), *_is_sample(),
                    *_window(since, until)))
    return [SampleRow(t, agent, rooms[room], target, metric, value, unit, st, period, tag)
            for t, agent, room, target, metric, value, unit, st, period, tag
            in session.execute(query.execution_options(yield_per=YIELD_PER))]


def prepared_site(session: OrmSession, site: Site, profiles: Sequence[Profile],
                  metrics: Iterable[str], since: datetime | None = None,
                  until: datetime | None = None, *,
                  aggregate: bool | None = None) -> PreparedSite:
    """What :func:`readiness.evaluate_prepared` needs to judge ``profiles`` on the site's
    rows of ``metrics`` (the report's metrics) in ``[since, until)``; the same verdicts as
    :func:`readiness.evaluate_many` on ``measurement_rows(session, site, metrics, ...)``.

    ``aggregate``: group cells in the database (default: on PostgreSQL).
    """
    metrics = sorted(set(metrics))
    if aggregate is None:
        aggregate = session.get_bind().dialect.name == "postgresql"
    rooms = _room_names(session, site)
    _tune(session)
    window = _window(since, until)
    groups = _groups(session, site, profiles)
    cells: dict[GroupKey, GroupCells] = {}
    if groups:
        samples = _samples(site, groups, window)
        cells = (_cells_in_database if aggregate else _cells_in_python)(session, samples, rooms)
    present_rooms, devices = _present(session, site, metrics, window)
    wifi = _wifi(session, site, [m for m in WIFI_CONTEXT_METRICS if m in metrics], window,
                 rooms)
    return PreparedSite(CellSamples(cells), cast("dict[str, list[MeasurementRow]]", wifi),
                        present_rooms, devices)


def _wifi(session: OrmSession, site: Site, metrics: Sequence[str],
          window: list[ColumnElement[bool]], rooms: dict[int, str],
          ) -> dict[str, list[WifiReading]]:
    """The Wi-Fi load samples remediation quotes (stat "value"), by metric: counted by
    (room, period, value) in the database, each distinct reading repeated its count times
    (loads, station counts and bands take few distinct values)."""
    out: dict[str, list[WifiReading]] = {}
    if not metrics:
        return out
    keys = (M.metric, M.room_id, M.period, M.value)
    query = (select(*keys, func.count()).where(
        M.site_id == site.id, M.metric.in_(metrics), M.stat == "value", *_is_sample(),
        *window).group_by(*keys))
    for metric, room_id, period, value, n in session.execute(query):
        out.setdefault(metric, []).extend(
            [WifiReading(metric, rooms[room_id], period, "value", value)] * n)
    return out


__all__ = ["CellSamples", "GroupCells", "SampleRow", "WifiReading", "judged_pairs",
           "prepared_site", "sample_rows"]

"""The samples a readiness evaluation judges, fetched the fast way.

:func:`measurement_rows` hands the evaluation every column of every row as a
:class:`MeasurementRow`; that is ~10 µs a row before any judging. :func:`prepared_site`
fetches only what :func:`collector.services.readiness.evaluate_prepared` reads, and
gives the same verdicts (``tests/collector/test_sql_evaluation.py`` checks every field):

1. the (metric, stat) pairs the profiles judge, and for each the targets that occur
   (a loose index scan: one index probe per distinct target, not one per row);
2. the targets whose host a requirement's globs match (Python: the same
   :func:`target_matches` the evaluation uses): the **groups** (metric, stat, unit,
   target) to fetch, each one index range;
3. which groups hold rows of coordinated room tests (the few room-test reports, by the
   partial index ``ix_report_room_test``, joined to their rows): only those groups pay
   the per-row ``NOT IN`` check, which cost more than the index scan itself (10M rows,
   Teams: 0.7 of 1.6 s);
4. the samples of those groups (value present, not a room test, in the window) as
   **cells**: (``in_lesson``, device, room, period) with their values and first/last
   time, in a :class:`sample_cells.CellTable` (numpy columns; the statistics are taken
   there, bit for bit the Python ones: :mod:`collector.services.sample_stats`).
   On PostgreSQL the database groups each group's samples into **blocks** of (tag,
   room, period) (a small hash table) and appends each sample's device (a 64-bit hash of
   its id), time and value to its block as binary (``string_agg`` of ``*send``:
   fixed-width big-endian, read by ``numpy.frombuffer``, fetched in binary on the
   session's connection); numpy splits the blocks by device. Elsewhere (SQLite) the
   rows stream (``yield_per``) into the cells;
5. the devices and rooms of every row of the report's metrics (a room or device with
   none of a requirement's samples is judged unknown, so they must be known), and the
   Wi-Fi load readings remediation quotes, counted by distinct value
   (:class:`CountedWifi`).

Why not ``percentile_cont``: PostgreSQL computes the rank as ``fraction × (n - 1)``,
the evaluation as ``(n - 1) × q / 100``; the two differ in the last bit for about a third
of sample counts (e.g. p95 of 4 values), so the interpolated percentile would too, and a
verdict on the threshold could flip. Shipping the samples grouped and exact keeps one
implementation of the rules (:mod:`readiness_rules`) and of the statistics' formulas.

Measured at 10M rows (PostgreSQL 15, 2 shared cores under other load; Teams: 823k
samples, 28.8k cells; every built-in profile: 1.86M samples, 218k cells), the database's
part of step 4: the index-only scans alone 0.35 s / 0.9 s; grouping by whole cells
(device in the hash key: a big hash table) 0.9-1.1 s / 2.3-3.2 s; by blocks as here
0.5-0.6 s / 1.6-2.0 s; the text values (``extra_float_digits``) of the first version
cost about 0.5 s / 4 s more between the database and Python. See
``benchmarks/evaluation.py`` for the whole report.

**PostgreSQL since revision 0008** keeps a probe run's values as one row
(:mod:`collector.measurement_runs`), and steps 1, 2, 4 and 5's Wi-Fi readings read the
runs instead (:mod:`collector.services.sample_runs`): the groups from the site's run
shapes (``measurement_key``), then one index-only range per (probe, target, shape),
grouped into the same blocks with a value blob per group. 10M rows: Teams 1.28 s, every
built-in profile 3.43 s for the whole report (1.54 s and 3.31 s from the rows before).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from itertools import chain
from typing import Any, NamedTuple
from typing import cast as typed

import numpy as np
from sqlalchemy import (
    ColumnElement,
    and_,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import col

from collector.measurement_runs import measurement_run
from collector.models import Agent, Measurement, Report, Room, Site
from collector.services.profiles import Profile
from collector.services.readiness import PreparedSite, WifiSource
from collector.services.readiness_samples import ROOM_TEST_TRIGGER, GroupKey, group_matches
from collector.services.remediation import WIFI_CONTEXT_METRICS
from collector.services.sample_cells import CellSamples, CellTable, to_micros
from collector.services.sample_runs import (
    Shape,
    block_queries,
    cells_from_blocks,
    group_parts,
    site_shapes,
    targets_by_pair,
    wifi_counts,
)

YIELD_PER = 20_000
WORK_MEM = "256MB"
M = Measurement.__table__.c  # type: ignore[attr-defined]
MEASUREMENT = Measurement.__table__  # type: ignore[attr-defined]


class WifiReading(NamedTuple):
    """A Wi-Fi load reading as remediation quotes it (:func:`remediation.room_wifi` reads
    ``room``, ``period``, ``stat`` and ``value`` only)."""

    metric: str
    room: str
    period: str | None
    stat: str
    value: float


def judged_pairs(profiles: Iterable[Profile]) -> set[tuple[str, str, str]]:
    """The (metric, stat, unit) triples the profiles' requirements judge."""
    return {(r.metric, r.stat, r.unit) for p in profiles for r in p.requirements}


def _window(since: datetime | None, until: datetime | None,
            time: Any = M.time) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if since is not None:
        out.append(time >= since)
    if until is not None:
        out.append(time < until)
    return out


def _room_test_reports() -> Any:
    return select(col(Report.id)).where(col(Report.trigger) == ROOM_TEST_TRIGGER)


def _not_room_test(report_pk: Any = M.report_pk) -> ColumnElement[bool]:
    return typed(ColumnElement[bool],
                 report_pk.not_in(_room_test_reports().scalar_subquery()))


def _room_test_groups(session: OrmSession, site: Site) -> set[GroupKey]:
    """The groups that hold rows of coordinated room tests (few reports, few rows)."""
    query = (select(M.metric, M.stat, M.unit, M.target).distinct()
             .join_from(MEASUREMENT, Report, col(Report.id) == M.report_pk)
             .where(col(Report.trigger) == ROOM_TEST_TRIGGER, M.site_id == site.id))
    return {(m, s, u, t) for m, s, u, t in session.execute(query)}


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


def _groups(session: OrmSession, site: Site, profiles: Sequence[Profile],
            shapes: Sequence[Shape] | None = None) -> list[GroupKey]:
    """The (metric, stat, unit, target) groups some requirement judges (a superset: a
    group may have no samples in the window). ``shapes`` (PostgreSQL): the site's, from
    ``measurement_key``, which name every target a (metric, stat) has."""
    by_pair = targets_by_pair(shapes) if shapes is not None else None
    out: list[GroupKey] = []
    for metric, stat, unit in sorted(judged_pairs(profiles)):
        targets = (_targets(session, site.id or 0, metric, stat) if by_pair is None
                   else by_pair.get((metric, stat), []))
        for target in targets:
            key = (metric, stat, unit, target)
            if any(group_matches(key, r) for p in profiles for r in p.requirements):
                out.append(key)
    return out


def _group_rows(site: Site, index: int, key: GroupKey, room_tests: set[GroupKey],
                window: list[ColumnElement[bool]]) -> Any:
    """The sample rows of one group: an index range (on PostgreSQL index-only)."""
    metric, stat, unit, target = key
    where = [M.site_id == site.id, M.metric == metric, M.stat == stat,
             M.target.is_(None) if target is None else M.target == target, M.unit == unit,
             M.value.is_not(None), *window]
    if key in room_tests:
        where.append(_not_room_test())
    return select(literal(index).label("g"), M.in_lesson, M.agent_id, M.room_id, M.period,
                  M.time, M.value).where(and_(*where))


def _tune(session: OrmSession) -> None:
    """PostgreSQL, this transaction: plans for the whole result (a server-side cursor
    otherwise favours a fast first row); sorts and hashes in memory."""
    if session.get_bind().dialect.name == "postgresql":
        for setting in ("cursor_tuple_fraction = 1.0", f"work_mem = '{WORK_MEM}'"):
            session.execute(text(f"SET LOCAL {setting}"))


def _room_names(session: OrmSession, site: Site) -> dict[int, str]:
    rooms = Room.__table__.c  # type: ignore[attr-defined]
    query = select(rooms.id, rooms.name).where(rooms.site_id == site.id)
    return {room_id: name for room_id, name in session.execute(query)}


def _cells_in_python(session: OrmSession, site: Site, parts: list[Any],
                     keys: Sequence[GroupKey], rooms: dict[int, str]) -> CellTable:
    """The rows stream into cells (any backend)."""
    values: dict[tuple[Any, ...], list[float]] = {}
    spans: dict[tuple[Any, ...], list[datetime]] = {}
    for row in session.execute(union_all(*parts).execution_options(yield_per=YIELD_PER)):
        key = row[:5]
        held = values.get(key)
        if held is None:
            values[key], spans[key] = [row[6]], [row[5], row[5]]
            continue
        held.append(row[6])
        span = spans[key]
        if row[5] < span[0]:
            span[0] = row[5]
        elif row[5] > span[1]:
            span[1] = row[5]
    cells = list(values)
    group, tag, agent, room_id, period = zip(*cells, strict=True) if cells else ((),) * 5
    lists = [values[c] for c in cells]
    return CellTable.from_columns(
        keys, group, tag, agent, [rooms[r] for r in room_id], period,
        [to_micros(spans[c][0]) for c in cells], [to_micros(spans[c][1]) for c in cells],
        [len(v) for v in lists],
        np.fromiter(chain.from_iterable(lists), np.float64, sum(map(len, lists))))


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


def prepared_site(session: OrmSession, site: Site, profiles: Sequence[Profile],
                  metrics: Iterable[str], since: datetime | None = None,
                  until: datetime | None = None, *,
                  aggregate: bool | None = None) -> PreparedSite:
    """What :func:`readiness.evaluate_prepared` needs to judge ``profiles`` on the site's
    rows of ``metrics`` (the report's metrics) in ``[since, until)``; the same verdicts as
    :func:`readiness.evaluate_many` on ``measurement_rows(session, site, metrics, ...)``.

    ``aggregate``: on PostgreSQL, group the samples into cells in the database (the
    default there); otherwise, and always on SQLite, the rows stream into cells here.
    """
    metrics = sorted(set(metrics))
    per_run = session.get_bind().dialect.name == "postgresql"  # measurement_run (0008)
    if aggregate is None:
        aggregate = per_run
    rooms = _room_names(session, site)
    _tune(session)
    window = _window(since, until)
    shapes = site_shapes(session, site) if per_run else None
    groups = _groups(session, site, profiles, shapes)
    room_tests = _room_test_groups(session, site)
    table = CellTable.from_columns(groups, [], [], [], [], [], [], [], [], np.zeros(0))
    def run_window(time: Any) -> list[ColumnElement[bool]]:
        return _window(since, until, time)

    if shapes is not None and aggregate:
        blocks = block_queries(site, groups, shapes, _not_room_test, room_tests, run_window)
        if blocks:
            table = cells_from_blocks(session, site, blocks, groups, rooms, lambda: (
                _cells_in_python(session, site, group_parts(
                    site, groups, shapes, _not_room_test, room_tests, run_window),
                    groups, rooms)))
    else:
        parts = (group_parts(site, groups, shapes, _not_room_test, room_tests, run_window)
                 if shapes is not None else [_group_rows(site, i, key, room_tests, window)
                                             for i, key in enumerate(groups)])
        if parts:
            table = _cells_in_python(session, site, parts, groups, rooms)
    present_rooms, devices = _present(session, site, metrics, window)
    wifi = _wifi(session, site, [m for m in WIFI_CONTEXT_METRICS if m in metrics],
                 (since, until), rooms, any(k[0] in WIFI_CONTEXT_METRICS for k in room_tests),
                 shapes)
    return PreparedSite(CellSamples(table), typed("WifiSource", wifi),
                        present_rooms, devices)


class CountedWifi:
    """Wi-Fi load readings counted by (metric, room, period, value); a room's are
    expanded (each distinct reading repeated its count times) when remediation asks."""

    def __init__(self, counted: dict[str, list[tuple[str, str | None, float, int]]]) -> None:
        self.counted = counted
        self.rooms: dict[str, dict[str, list[WifiReading]]] = {}

    def of_room(self, room: str) -> Mapping[str, Sequence[WifiReading]]:
        found = self.rooms.get(room)
        if found is None:
            found = self.rooms[room] = {}
            for metric, period, value, n in self.counted.get(room, ()):
                found.setdefault(metric, []).extend(
                    [WifiReading(metric, room, period, "value", value)] * n)
        return found


def _wifi(session: OrmSession, site: Site, metrics: Sequence[str],
          span: tuple[datetime | None, datetime | None], rooms: dict[int, str],
          room_tests: bool, shapes: Sequence[Shape] | None) -> CountedWifi:
    """The Wi-Fi load samples remediation quotes (stat "value") in ``span``, counted by
    (metric, room, period, value) (loads, station counts and bands take few distinct
    values): on PostgreSQL numpy counts each (metric, room, period)'s binary values (a
    hash table of (metric, room, period) is cheaper than one that also holds the value:
    10M rows, 0.24 vs 0.35 s), read from the runs of the probes and targets that have
    them (``shapes``: the site's, on PostgreSQL); elsewhere the database counts.
    ``room_tests``: some room-test rows are of these metrics (leave them out)."""
    counted: dict[str, list[tuple[str, str | None, float, int]]] = {}
    if not metrics:
        return CountedWifi(counted)
    if shapes is not None:
        extra = [_not_room_test(measurement_run.c.report_pk)] if room_tests else []
        return CountedWifi(wifi_counts(session, site, shapes, metrics, extra,
                                       lambda time: _window(*span, time), rooms))
    where = [M.site_id == site.id, M.metric.in_(metrics), M.stat == "value",
             M.value.is_not(None), *([_not_room_test()] if room_tests else []),
             *_window(*span)]
    query = select(M.metric, M.room_id, M.period, M.value, func.count()).where(*where) \
        .group_by(M.metric, M.room_id, M.period, M.value)
    for metric, room_id, period, value, n in session.execute(query):
        counted.setdefault(rooms[room_id], []).append((metric, period, value, n))
    return CountedWifi(counted)


__all__ = ["CountedWifi", "WifiReading", "judged_pairs", "prepared_site"]

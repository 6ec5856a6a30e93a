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
    LargeBinary,
    and_,
    func,
    literal,
    select,
    text,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import col

from collector.models import Agent, Measurement, Report, Room, Site
from collector.services.profiles import Profile
from collector.services.readiness import PreparedSite, WifiSource
from collector.services.readiness_samples import ROOM_TEST_TRIGGER, GroupKey, group_matches
from collector.services.remediation import WIFI_CONTEXT_METRICS
from collector.services.sample_cells import CellSamples, CellTable, to_micros

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


def _window(since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if since is not None:
        out.append(M.time >= since)
    if until is not None:
        out.append(M.time < until)
    return out


def _room_test_reports() -> Any:
    return select(col(Report.id)).where(col(Report.trigger) == ROOM_TEST_TRIGGER)


def _not_room_test() -> ColumnElement[bool]:
    return M.report_pk.not_in(_room_test_reports().scalar_subquery())


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


PG_EPOCH_MICROS = 946_684_800_000_000
"""PostgreSQL's binary timestamps count µs from 2000-01-01 UTC."""


def _agent_hashes(session: OrmSession, site: Site, unknown: Sequence[int] = ()) -> dict[int, str]:
    """The site's agents by ``hashtextextended(id, 0)`` (with ``unknown``: the agents of
    any site with those hashes). Raises :class:`_Unmapped` if two share a hash."""
    agents = Agent.__table__.c  # type: ignore[attr-defined]
    hashed = func.hashtextextended(agents.id, 0)
    query = select(agents.id, hashed).where(
        hashed.in_(list(unknown)) if unknown else agents.site_id == site.id)
    out: dict[int, str] = {}
    for agent_id, h in session.execute(query):
        if out.setdefault(h, agent_id) != agent_id:
            raise _Unmapped(f"agents {out[h]!r} and {agent_id!r} share a hash")
    return out


class _Unmapped(Exception):
    """A sample's device hash names no single agent: two ids hash alike (about 1 in 10^13
    for 1,000 agents) or no agent has it. The rows then stream into cells instead."""


def _agent_codes(session: OrmSession, site: Site, hashes: Any) -> tuple[Any, list[str]]:
    """Each sample's agent as a code into the returned names."""
    known = _agent_hashes(session, site)
    unique, codes = np.unique(hashes, return_inverse=True)
    missing = [h for h in unique.tolist() if h not in known]
    if missing:
        known |= _agent_hashes(session, site, missing)
        if any(h not in known for h in missing):
            raise _Unmapped(f"no agent has the hash of some samples' device: {missing[:3]}")
    return codes, [known[h] for h in unique.tolist()]


def _binary_agg(column: Any) -> Any:
    """``string_agg`` of a binary ``*send`` per row: fixed-width big-endian values."""
    return type_coerce(func.string_agg(column, literal(b"", LargeBinary)), LargeBinary)


def _binary_rows(session: OrmSession, query: Any) -> list[tuple[Any, ...]]:
    """PostgreSQL: ``query``'s rows in binary (bytea as bytes, not hex) on the session's
    own psycopg connection, hash-aggregated whatever the estimate (a sort of millions
    of rows by their cells costs several times more)."""
    compiled = query.compile(dialect=session.get_bind().dialect,
                             compile_kwargs={"render_postcompile": True})
    driver = session.connection().connection.driver_connection
    with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
        cursor.execute("SELECT current_setting('enable_sort'), "
                       "set_config('enable_sort', 'off', true)")
        (before, _off), = cursor.fetchall()
        cursor.execute(str(compiled), compiled.params)
        found = cursor.fetchall()
        cursor.execute("SELECT set_config('enable_sort', %s, true)", (before,))
        return found


def _cells_in_database(session: OrmSession, site: Site, parts: list[Any],
                       keys: Sequence[GroupKey], rooms: dict[int, str]) -> CellTable:
    """One GROUP BY (tag, room, period) per group, joined by UNION ALL, each sample's
    device (a 64-bit hash of its id), time and value appended to its block as binary;
    fetched in binary on the session's psycopg connection. Grouping by device too costs
    twice as much in the database (a big hash table, 10M rows Teams: 0.95 vs 0.5 s):
    numpy splits the blocks by device instead (:meth:`CellTable.from_blocks`)."""
    grouped = []
    for part in parts:
        rows = part.subquery()
        block = (rows.c.g, rows.c.in_lesson, rows.c.room_id, rows.c.period)
        grouped.append(select(*block, *(
            _binary_agg(column)
            for column in (func.int8send(func.hashtextextended(rows.c.agent_id, 0)),
                           func.timestamptz_send(rows.c.time), func.float8send(rows.c.value))
        )).group_by(*block))
    found = _binary_rows(session, union_all(*grouped))
    if not found:
        return CellTable.from_columns(keys, [], [], [], [], [], [], [], [], np.zeros(0))
    group, tag, room_id, period, agent_blobs, time_blobs, value_blobs = zip(*found, strict=True)
    hashes = np.frombuffer(b"".join(agent_blobs), ">i8")
    try:
        codes, agents = _agent_codes(session, site, hashes)
    except _Unmapped:
        return _cells_in_python(session, site, parts, keys, rooms)
    return CellTable.from_blocks(
        keys, group, tag, [rooms[r] for r in room_id], period,
        [len(b) // 8 for b in value_blobs], codes, agents,
        np.frombuffer(b"".join(time_blobs), ">i8").astype(np.int64) + PG_EPOCH_MICROS,
        np.frombuffer(b"".join(value_blobs), ">f8").astype(np.float64))


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

    ``aggregate``: group cells in the database (default: on PostgreSQL; it must be).
    """
    metrics = sorted(set(metrics))
    if aggregate is None:
        aggregate = session.get_bind().dialect.name == "postgresql"
    rooms = _room_names(session, site)
    _tune(session)
    window = _window(since, until)
    groups = _groups(session, site, profiles)
    room_tests = _room_test_groups(session, site)
    table = CellTable.from_columns(groups, [], [], [], [], [], [], [], [], np.zeros(0))
    if groups:
        parts = [_group_rows(site, i, key, room_tests, window) for i, key in enumerate(groups)]
        table = (_cells_in_database if aggregate else _cells_in_python)(
            session, site, parts, groups, rooms)
    present_rooms, devices = _present(session, site, metrics, window)
    wifi = _wifi(session, site, [m for m in WIFI_CONTEXT_METRICS if m in metrics], window,
                 rooms, any(k[0] in WIFI_CONTEXT_METRICS for k in room_tests))
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
          window: list[ColumnElement[bool]], rooms: dict[int, str], room_tests: bool,
          ) -> CountedWifi:
    """The Wi-Fi load samples remediation quotes (stat "value"), counted by (metric,
    room, period, value) (loads, station counts and bands take few distinct values): on
    PostgreSQL numpy counts each (metric, room, period)'s binary values (a hash table of
    (metric, room, period) is cheaper than one that also holds the value: 10M rows,
    0.24 vs 0.35 s), elsewhere the database does. ``room_tests``: some room-test rows
    are of these metrics (leave them out)."""
    counted: dict[str, list[tuple[str, str | None, float, int]]] = {}
    if not metrics:
        return CountedWifi(counted)
    where = [M.site_id == site.id, M.metric.in_(metrics), M.stat == "value",
             M.value.is_not(None), *([_not_room_test()] if room_tests else []), *window]
    if session.get_bind().dialect.name == "postgresql":
        keys = (M.metric, M.room_id, M.period)
        for metric, room_id, period, blob in _binary_rows(session, select(
                *keys, _binary_agg(func.float8send(M.value))).where(*where).group_by(*keys)):
            values, counts = np.unique(np.frombuffer(blob, ">f8"), return_counts=True)
            counted.setdefault(rooms[room_id], []).extend(
                (metric, period, v, n)
                for v, n in zip(values.tolist(), counts.tolist(), strict=True))
        return CountedWifi(counted)
    query = select(M.metric, M.room_id, M.period, M.value, func.count()).where(*where) \
        .group_by(M.metric, M.room_id, M.period, M.value)
    for metric, room_id, period, value, n in session.execute(query):
        counted.setdefault(rooms[room_id], []).append((metric, period, value, n))
    return CountedWifi(counted)


__all__ = ["CountedWifi", "WifiReading", "judged_pairs", "prepared_site"]

"""PostgreSQL: the samples readiness judges, read from the probe runs that hold them.

On PostgreSQL a probe run's values are one row of ``measurement_run`` (arrays; revision
0008, :mod:`collector.measurement_runs`), and a run's **shape** names its metric, stat
and unit arrays. :mod:`collector.services.sample_query` asks here for the same rows it
reads from ``measurement`` elsewhere:

- the **groups** (metric, stat, unit, target) come from ``measurement_key``, the shapes
  each (probe, target) of the site has, a few rows: no scan of the values;
- a shape says at which position of a run each group's value sits, so the samples come
  from one index-only range per (probe, target, shape) of the covering
  ``ix_measurement_run_samples``, grouped in the database into blocks of (tag, room,
  period): the devices and times once, and the wanted positions of the ``value``
  arrays as one binary blob each (:func:`block_queries`). No run's arrays are unnested,
  and a target's min, p50, p95 and max groups are read in one pass over its runs.

:func:`group_parts` gives the same samples a row per value (``sample_query``'s per-group
columns: ``g``, ``in_lesson``, ``agent_id``, ``room_id``, ``period``, ``time``,
``value``), for the cells made in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Select,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import Session as OrmSession

from collector.measurement_runs import measurement_key, measurement_run
from collector.models import Site
from collector.services.binary_fetch import (
    PG_EPOCH_MICROS,
    Unmapped,
    agent_codes,
    binary_agg,
    binary_rows,
)
from collector.services.readiness_samples import GroupKey
from collector.services.sample_cells import CellTable

R = measurement_run.c
K = measurement_key.c
Window = Callable[[Any], list[ColumnElement[bool]]]
"""The time window's conditions on a ``time`` column."""


class Shape(NamedTuple):
    """A (probe, target) of the site and one shape of its runs."""

    probe: str
    target: str | None
    shape: int
    metric: tuple[str, ...]
    stat: tuple[str, ...]
    unit: tuple[str, ...]


def site_shapes(session: OrmSession, site: Site) -> list[Shape]:
    """Every (probe, target, shape) of the site, targets in byte order with None last (as
    a loose index scan of the old covering index gave them)."""
    query = select(K.probe, K.target, K.shape, K.metric, K.stat, K.unit).where(
        K.site_id == site.id)
    found = [Shape(p, t, sh, tuple(m), tuple(s), tuple(u))
             for p, t, sh, m, s, u in session.execute(query)]
    return sorted(found, key=lambda k: (k.target is None, k.target or "", k.probe, k.shape))


def targets_by_pair(shapes: Iterable[Shape]) -> dict[tuple[str, str], list[str | None]]:
    """The targets that have each (metric, stat), in :func:`site_shapes` order."""
    out: dict[tuple[str, str], list[str | None]] = {}
    for k in shapes:
        for pair in dict.fromkeys(zip(k.metric, k.stat, strict=True)):
            found = out.setdefault(pair, [])
            if not found or found[-1] != k.target:
                found.append(k.target)
    return out


def _target_is(target: str | None) -> ColumnElement[bool]:
    return R.target.is_(None) if target is None else R.target == target


def _positioned(where: list[Any], labels: Sequence[Any], positions: Sequence[int],
                label_type: Any) -> Any:
    """The runs matching ``where`` (all of one shape), one row per wanted position: its
    label and the value there (``unnest`` of two arrays in the select list)."""
    return select(
        R.in_lesson, R.agent_id, R.room_id, R.period, R.time,
        func.unnest(array([literal(x, label_type) for x in labels]), type_=label_type)
        .label("label"),
        func.unnest(array([R.value[p] for p in positions]), type_=Float).label("value"),
    ).where(*where).subquery("u")


NAN = literal(float("nan"), Float)
"""Stands for a NULL value in a value blob (values are finite: the wire refuses others)."""


class BlockQuery(NamedTuple):
    """One (probe, target, shape)'s samples of ``groups``, grouped in the database by
    (tag, room, period): rows of ``in_lesson``, ``room_id``, ``period``, the devices'
    64-bit id hashes and the times as binary, then one binary blob of values per entry
    of ``groups`` (NaN where the run has no value there)."""

    query: Select[Any]
    groups: list[int]


def block_queries(site: Site, groups: Sequence[GroupKey], shapes: Sequence[Shape],
                  not_room_test: Callable[[Any], Any], room_tests: set[GroupKey],
                  window: Window) -> list[BlockQuery]:
    """The samples of ``groups`` (numbered by position) per (probe, target, shape) that
    holds any: one index-only range, each run counted once for all its groups (a row per
    value, as :func:`group_parts` makes, costs ~1 µs more per value in the database)."""
    out = []
    for wanted, where in _wanted(site, groups, shapes, not_room_test, room_tests, window):
        block = (R.in_lesson, R.room_id, R.period)
        out.append(BlockQuery(select(
            *block, binary_agg(func.int8send(func.hashtextextended(R.agent_id, 0))),
            binary_agg(func.timestamptz_send(R.time)),
            *(binary_agg(func.float8send(func.coalesce(R.value[p], NAN)))
              for _g, p in wanted)).where(*where).group_by(*block),
            [g for g, _p in wanted]))
    return out


def _wanted(site: Site, groups: Sequence[GroupKey], shapes: Sequence[Shape],
            not_room_test: Callable[[Any], Any], room_tests: set[GroupKey],
            window: Window) -> Iterable[tuple[list[tuple[int, int]], list[Any]]]:
    """Per shape holding any of ``groups``: the (group, 1-based position) pairs and the
    conditions on its runs."""
    index = {key: i for i, key in enumerate(groups)}
    for k in shapes:
        wanted = [(index[key], p + 1) for p, key in enumerate(
            zip(k.metric, k.stat, k.unit, [k.target] * len(k.metric), strict=True))
            if key in index]
        if not wanted:
            continue
        where = [R.site_id == site.id, R.probe == k.probe, _target_is(k.target),
                 R.shape == k.shape, *window(R.time)]
        if any(groups[g] in room_tests for g, _p in wanted):
            where.append(not_room_test(R.report_pk))
        yield wanted, where


def group_parts(site: Site, groups: Sequence[GroupKey], shapes: Sequence[Shape],
                not_room_test: Callable[[Any], Any], room_tests: set[GroupKey],
                window: Window) -> list[Select[Any]]:
    """The sample rows of ``groups`` (numbered by position), a row per value: one query
    per (probe, target, shape) holding any (for the cells made in Python, when a device
    hash is ambiguous). ``not_room_test(report_pk)``: the condition that leaves a
    coordinated room test's rows out, applied where one of the groups holds them."""
    parts = []
    for wanted, where in _wanted(site, groups, shapes, not_room_test, room_tests, window):
        u = _positioned(where, [g for g, _p in wanted], [p for _g, p in wanted],
                        Integer())
        parts.append(select(u.c.label.label("g"), u.c.in_lesson, u.c.agent_id, u.c.room_id,
                            u.c.period, u.c.time, u.c.value).where(u.c.value.is_not(None)))
    return parts


def wifi_queries(site: Site, shapes: Sequence[Shape], metrics: Sequence[str],
                 extra: Sequence[ColumnElement[bool]], window: Window,
                 ) -> list[tuple[Select[Any], list[str]]]:
    """The Wi-Fi load readings (``metrics``, stat ``value``) of the site's runs, per shape
    that has any: rows of ``room_id``, ``period`` and one binary blob of values per entry
    of the returned metric list (NaN where a run has none); ``extra``: more conditions
    on the runs."""
    out = []
    for k in shapes:
        wanted = [(m, p + 1) for p, (m, s) in enumerate(zip(k.metric, k.stat, strict=True))
                  if m in metrics and s == "value"]
        if not wanted:
            continue
        block = (R.room_id, R.period)
        out.append((select(*block, *(binary_agg(func.float8send(func.coalesce(R.value[p], NAN)))
                                      for _m, p in wanted))
                    .where(R.site_id == site.id, R.probe == k.probe, _target_is(k.target),
                           R.shape == k.shape, *extra, *window(R.time)).group_by(*block),
                    [m for m, _p in wanted]))
    return out


def cells_from_blocks(session: OrmSession, site: Site, queries: list[BlockQuery],
                      keys: Sequence[GroupKey], rooms: dict[int, str],
                      fallback: Callable[[], CellTable]) -> CellTable:
    """PostgreSQL's runs (:func:`sample_runs.block_queries`): each (tag, room, period)
    block's devices and times once, a value blob per group; here each group's block is
    the runs with a value for it. ``parts``: the same samples a row per value, should a
    device hash name no single agent."""
    group: list[int] = []
    tag: list[bool | None] = []
    room: list[str] = []
    period: list[str | None] = []
    size: list[int] = []
    hashes: list[Any] = []
    times: list[Any] = []
    values: list[Any] = []
    for query, groups in queries:
        for in_lesson, room_id, period_name, agent_blob, time_blob, *blobs in binary_rows(
                session, query):
            agent_hashes = np.frombuffer(agent_blob, ">i8")
            stamps = np.frombuffer(time_blob, ">i8")
            for g, blob in zip(groups, blobs, strict=True):
                found = np.frombuffer(blob, ">f8")
                keep = ~np.isnan(found)
                n = int(np.count_nonzero(keep))
                if n:
                    group.append(g)
                    tag.append(in_lesson)
                    room.append(rooms[room_id])
                    period.append(period_name)
                    size.append(n)
                    hashes.append(agent_hashes[keep])
                    times.append(stamps[keep])
                    values.append(found[keep])
    if not group:
        return CellTable.from_columns(keys, [], [], [], [], [], [], [], [], np.zeros(0))
    try:
        codes, agents = agent_codes(session, site, np.concatenate(hashes))
    except Unmapped:
        return fallback()
    return CellTable.from_blocks(
        keys, group, tag, room, period, size, codes, agents,
        np.concatenate(times).astype(np.int64) + PG_EPOCH_MICROS,
        np.concatenate(values).astype(np.float64))


def wifi_counts(session: OrmSession, site: Site, shapes: Sequence[Shape],
                metrics: Sequence[str], extra: Sequence[ColumnElement[bool]], window: Window,
                rooms: dict[int, str]) -> dict[str, list[tuple[str, str | None, float, int]]]:
    """Per room, the Wi-Fi load readings (``metrics``, stat ``value``) counted by (metric,
    period, value) (:func:`wifi_queries`; numpy counts each blob's values)."""
    counted: dict[str, list[tuple[str, str | None, float, int]]] = {}
    for query, names in wifi_queries(site, shapes, metrics, extra, window):
        for room_id, period, *blobs in binary_rows(session, query):
            for metric, blob in zip(names, blobs, strict=True):
                found = np.frombuffer(blob, ">f8")
                values, counts = np.unique(found[~np.isnan(found)], return_counts=True)
                counted.setdefault(rooms[room_id], []).extend(
                    (metric, period, v, n)
                    for v, n in zip(values.tolist(), counts.tolist(), strict=True))
    return counted

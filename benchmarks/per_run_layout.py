"""A prototype of one row per probe run, for :mod:`benchmarks.ingest_cost` to price.

Today every value is a row of ``measurement`` with five index entries (primary key,
``report_pk``, ``agent_id``, ``(room_id, time)`` and the covering readiness index): an
agent-shaped upload of 20 reports writes 564 such rows. But most of a row is the same for
every value of its probe run (report, agent, site, room, time, probe, target, period);
only metric, value, text, unit, method, stat and samples differ. This layout
(:data:`DDL`) keeps those on the ``proberun`` row, which ingest writes anyway, as
parallel arrays, with the per-run indexes a reader would need: the upload becomes 20
report rows and 120 probe-run rows, and no ``measurement`` rows.

It is a prototype of the write side only (no reader reads it): the figure it gives is
what the redesign described in docs/deploy-collector.md §5 would save at ingest.

The arrays go to the server in PostgreSQL's binary array format (:func:`float8_array`,
:func:`int4_array`, :func:`text_array`), packed with :mod:`struct` and sent as opaque
bytes: psycopg's own list dumper is Python code per element and cost ~2 ms more of
the collector's CPU per upload than these. The text arrays of a probe (its metric, unit,
method and stat names) repeat from run to run, so their packed form is cached.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from collector.services.ingest_write import RUN_COLUMNS, CopyWriter, ReportRows, Row

DDL = (
    "ALTER TABLE proberun ADD COLUMN agent_id text, ADD COLUMN site_id integer,"
    " ADD COLUMN room_id integer, ADD COLUMN period varchar(40), ADD COLUMN in_lesson boolean,"
    ' ADD COLUMN metric text[] COLLATE "C", ADD COLUMN value float8[], ADD COLUMN text text[],'
    ' ADD COLUMN unit text[], ADD COLUMN method text[], ADD COLUMN stat text[] COLLATE "C",'
    " ADD COLUMN samples integer[]",
    'CREATE INDEX ix_proberun_site_probe_target ON proberun (site_id, probe, target COLLATE "C",'
    " started_at)",
    "CREATE INDEX ix_proberun_room_started ON proberun (room_id, started_at)",
    "CREATE INDEX ix_proberun_agent_id ON proberun (agent_id)",
)
"""The per-run columns and arrays on ``proberun``, and the indexes that replace
``measurement``'s (``report_pk`` and the primary key ``proberun`` already has)."""
ARRAYS = ("metric", "value", "text", "unit", "method", "stat", "samples")
"""The per-value columns, one array each, in :data:`collector.services.ingest_write.
MEASUREMENT_OWN` order."""
COLUMNS = ("id", "report_pk", *RUN_COLUMNS, "agent_id", "site_id", "room_id", "period",
           "in_lesson", *ARRAYS)
BYTEA = 17  # psycopg dumps bytes as they are: each array goes in its binary wire form
_HEADER = struct.Struct(">iiIii")  # dimensions, has nulls, element type, length, lower bound
_NULL = struct.pack(">i", -1)
FLOAT8, INT4, TEXT = 701, 23, 25


def _empty(element: int) -> bytes:
    return struct.pack(">iiI", 0, 0, element)  # no dimensions: PostgreSQL's empty array


def float8_array(values: Sequence[float | None]) -> bytes:
    """``values`` as a one-dimensional ``float8[]`` in PostgreSQL's binary format (bit for
    bit: -0.0 stays negative); None is a NULL element."""
    if not values:
        return _empty(FLOAT8)
    if None in values:
        return _HEADER.pack(1, 1, FLOAT8, len(values), 1) + b"".join(
            _NULL if v is None else struct.pack(">id", 8, v) for v in values)
    return _HEADER.pack(1, 0, FLOAT8, len(values), 1) + struct.pack(
        ">" + "id" * len(values), *[x for v in values for x in (8, v)])


@lru_cache(maxsize=4096)
def int4_array(values: tuple[int, ...]) -> bytes:
    """``values`` as a one-dimensional ``integer[]`` in PostgreSQL's binary format."""
    if not values:
        return _empty(INT4)
    return _HEADER.pack(1, 0, INT4, len(values), 1) + struct.pack(
        ">" + "ii" * len(values), *[x for v in values for x in (4, v)])


@lru_cache(maxsize=4096)
def text_array(values: tuple[str | None, ...]) -> bytes:
    """``values`` as a one-dimensional ``text[]`` in PostgreSQL's binary format (UTF-8);
    None is a NULL element. Cached: a probe's names repeat from run to run."""
    if not values:
        return _empty(TEXT)
    parts = [_HEADER.pack(1, 1 if None in values else 0, TEXT, len(values), 1)]
    for v in values:
        if v is None:
            parts.append(_NULL)
        else:
            encoded = v.encode()
            parts.append(struct.pack(">i", len(encoded)) + encoded)
    return b"".join(parts)


def run_row(run_id: int, report_pk: int, run: Row, shared: Row,
            measurements: list[Row]) -> Row:
    """One probe run's row of :data:`COLUMNS` (``shared`` in
    :data:`collector.services.ingest_write.MEASUREMENT_SHARED` order)."""
    agent_id, site_id, room_id, _time, _probe, _target, period, in_lesson = shared
    columns: list[tuple[Any, ...]] = (list(zip(*measurements, strict=True)) if measurements
                                      else [()] * len(ARRAYS))
    metric, value, text, unit, method, stat, samples = columns
    return (run_id, report_pk, *run, agent_id, site_id, room_id, period, in_lesson,
            text_array(metric), float8_array(value), text_array(text), text_array(unit),
            text_array(method), text_array(stat), int4_array(samples))


class PerRunWriter(CopyWriter):
    """:class:`CopyWriter` writing each probe run's values on its ``proberun`` row (after
    :data:`DDL`) instead of as ``measurement`` rows."""

    COPY = f"COPY proberun ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"

    def write(self, conn: Connection, reports: list[ReportRows]) -> int:
        raw: Any = conn.connection.driver_connection  # a psycopg.Connection
        with raw.cursor() as cursor:
            types = self._column_types(conn, cursor)
            report_ids = self.report_ids[:len(reports)]
            runs: list[Row] = []
            values = 0
            for report_pk, report in zip(report_ids, reports, strict=True):
                for run in report.runs:
                    runs.append(run_row(self.run_ids[len(runs)], report_pk, run.run,
                                        run.shared, run.measurements))
                    values += len(run.measurements)
            self._copy(conn, cursor, types, self.report_copy,
                       [(pk, *r.report) for pk, r in zip(report_ids, reports, strict=True)])
            with cursor.copy(self.COPY) as copy:
                copy.set_types([BYTEA if c in ARRAYS else types["proberun", c]
                                for c in COLUMNS])
                for row in runs:
                    copy.write_row(row)
        return values

"""Write a group's new reports, probe runs and measurements in the caller's transaction.

Ingest is the collector's hottest path, so the rows go to the database through the DBAPI
connection of the session's own transaction, not through the ORM: the load benchmark
measured ``session.execute(insert(Model), rows)`` at ~55 ms (SQLite) and ~100 ms
(PostgreSQL, one round trip per row) for a batch of 20 reports x 25 measurements, almost
all of it per-row work in SQLAlchemy and psycopg.

- SQLite (:class:`SqliteWriter`): one ``INSERT`` per report and per probe run, the new id
  from ``lastrowid`` (SQLite runs in process: a statement costs microseconds), then one
  ``executemany`` for all measurements.
- PostgreSQL with psycopg 3 (:class:`CopyWriter`): the group's reads, the agents' update
  and the ids of the new reports and probe runs in one statement
  (:func:`collector.services.ingest_read.read_at_once`), then each table is written with
  one binary ``COPY ... FROM STDIN``; a probe run's values are one row of
  ``measurement_run`` (:mod:`collector.measurement_runs`), arrays packed by
  :mod:`collector.services.pg_arrays`.
- Anything else (:class:`CoreWriter`): SQLAlchemy Core, row by row; slower, portable.

Values arrive ready for the columns (times through :attr:`Writer.stamp`, the same
conversion :class:`collector.models.UTCDateTime` applies). A database error is raised as
SQLAlchemy's exception (:mod:`collector.services.dbapi_errors`), exactly as the ORM
would raise it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, insert

from collector.measurement_runs import KEY_COLUMNS, VALUE_ARRAYS
from collector.measurement_runs import RUN_COLUMNS as VALUE_RUN_COLUMNS
from collector.models import Measurement, ProbeRun, Report
from collector.services.dbapi_errors import as_sqlalchemy_error
from collector.services.ingest_read import (
    BatchQuery,
    BatchReads,
    read_at_once,
    read_separately,
    table_of,
)
from collector.services.pg_arrays import BYTEA
from collector.services.run_values import known_keys, values_row

REPORT_COLUMNS = ("report_id", "agent_id", "created_at", "received_at", "schema_version",
                  "agent_version", "spool_dropped", "trigger", "job_id", "clock_offset_s")
RUN_COLUMNS = ("probe", "target", "status", "reason", "started_at", "finished_at")
MEASUREMENT_SHARED = ("agent_id", "site_id", "room_id", "time", "probe", "target", "period",
                      "in_lesson")
"""The columns every measurement of one probe run has in common (after its two ids)."""
MEASUREMENT_OWN = ("metric", "value", "text", "unit", "method", "stat", "samples")

Row = tuple[Any, ...]
_COLUMN_TYPES: weakref.WeakKeyDictionary[Engine, dict[tuple[str, str], int]] = \
    weakref.WeakKeyDictionary()
"""Per PostgreSQL engine: (table, column) -> type OID, for binary ``COPY``."""


@dataclass
class RunRows:
    run: Row
    """:data:`RUN_COLUMNS` (the report's id is added by the writer)."""
    shared: Row
    """:data:`MEASUREMENT_SHARED` of its measurements."""
    measurements: list[Row] = field(default_factory=list)
    """:data:`MEASUREMENT_OWN` of each measurement."""


@dataclass
class ReportRows:
    report: Row
    """:data:`REPORT_COLUMNS`."""
    runs: list[RunRows] = field(default_factory=list)


class Writer(Protocol):
    stamp: Callable[[datetime], Any]
    """A timezone-aware datetime as its column stores it."""

    def read(self, conn: Connection, queries: list[BatchQuery]) -> list[BatchReads]:
        """Each upload's reads, and the agents' update, in the caller's transaction."""

    def write(self, conn: Connection, reports: list[ReportRows]) -> int:
        """Insert every row; the number of measurements written."""

    def committed(self) -> None:
        """The caller's transaction committed (what was written is there for good)."""


def _time_binder(conn: Connection) -> Callable[[datetime], Any]:
    """What SQLAlchemy binds for a :class:`collector.models.UTCDateTime` on this database."""
    column_type = table_of(Measurement).c.time.type
    process = column_type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    assert process is not None  # UTCDateTime always converts
    return process


def sqlite_text(value: datetime) -> str:
    """``value`` as SQLAlchemy stores a :class:`collector.models.UTCDateTime` in SQLite
    (UTC, ``YYYY-MM-DD HH:MM:SS.ffffff``: text that sorts in time order) in half the time
    its type machinery takes (~260 stamps per batch); a test holds the two equal."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} cannot be stored")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _columns(conn: Connection, names: tuple[str, ...]) -> str:
    quote = conn.dialect.identifier_preparer.quote
    return ", ".join(quote(n) for n in names)


def _measurement_columns() -> tuple[str, ...]:
    return ("report_pk", "probe_run_id", *MEASUREMENT_SHARED, *MEASUREMENT_OWN)


class SqliteWriter:
    def __init__(self, conn: Connection) -> None:
        self.stamp: Callable[[datetime], Any] = sqlite_text

        def sql(table: str, names: tuple[str, ...]) -> str:
            marks = ", ".join("?" * len(names))
            return f"INSERT INTO {table} ({_columns(conn, names)}) VALUES ({marks})"

        self.read = read_separately
        self.committed = _nothing
        self.report_sql = sql("report", REPORT_COLUMNS)
        self.run_sql = sql("proberun", ("report_pk", *RUN_COLUMNS))
        self.measurement_sql = sql("measurement", _measurement_columns())

    def write(self, conn: Connection, reports: list[ReportRows]) -> int:
        raw: Any = conn.connection.driver_connection  # a sqlite3.Connection
        cursor = raw.cursor()
        rows: list[Row] = []
        try:
            with as_sqlalchemy_error(conn, self.report_sql):
                for report in reports:
                    cursor.execute(self.report_sql, report.report)
                    report_pk = cursor.lastrowid
                    for run in report.runs:
                        cursor.execute(self.run_sql, (report_pk, *run.run))
                        head = (report_pk, cursor.lastrowid, *run.shared)
                        rows.extend(head + own for own in run.measurements)
            if rows:
                with as_sqlalchemy_error(conn, self.measurement_sql):
                    cursor.executemany(self.measurement_sql, rows)
        finally:
            cursor.close()
        return len(rows)


class CopyWriter:
    """PostgreSQL through psycopg 3: one statement for the group's reads, the agents'
    update and ids from the sequences (:func:`collector.services.ingest_read.
    read_at_once`), then three binary ``COPY``.

    Binary, not text: psycopg's C dumpers write a row of the measurement table in ~2.3 µs
    of client CPU where its text formatter took ~7-8 µs, and the server skips parsing
    numbers and times from text (``benchmarks/load.py``). Binary ``COPY`` needs each
    column's exact type, so they are read from the catalogue once per writer (a writer
    lives for one transaction, so they are kept per engine: a column's type changes only
    with a migration, and a process is restarted after one)."""

    KEYS = (f"INSERT INTO measurement_key ({', '.join(KEY_COLUMNS)}) VALUES {{}}"
            " ON CONFLICT DO NOTHING")
    """New shapes of a (probe, target) (:data:`collector.measurement_runs.measurement_key`);
    ``{}``: a row of placeholders per key."""
    TYPES = ("SELECT attrelid::regclass::text, attname, atttypid::integer FROM pg_attribute "
             "WHERE attrelid = ANY(ARRAY['report', 'proberun', 'measurement_run']::regclass[])"
             " AND attnum > 0 AND NOT attisdropped")

    def __init__(self, conn: Connection) -> None:
        self.stamp: Callable[[datetime], Any] = _time_binder(conn)

        def copy(table: str, names: tuple[str, ...]) -> tuple[str, str, tuple[str, ...]]:
            statement = f"COPY {table} ({_columns(conn, names)}) FROM STDIN (FORMAT BINARY)"
            return table, statement, names

        self.report_copy = copy("report", ("id", *REPORT_COLUMNS))
        self.run_copy = copy("proberun", ("id", "report_pk", *RUN_COLUMNS))
        self.measurement_copy = copy("measurement_run", (*VALUE_RUN_COLUMNS, *VALUE_ARRAYS))
        self.report_ids: list[int] = []
        self.run_ids: list[int] = []
        self.engine = conn.engine
        self.new_keys: set[tuple[Any, ...]] = set()

    def read(self, conn: Connection, queries: list[BatchQuery]) -> list[BatchReads]:
        group = read_at_once(conn, queries)
        self.report_ids, self.run_ids = group.report_ids, group.run_ids
        return group.reads

    def write(self, conn: Connection, reports: list[ReportRows]) -> int:
        """The rows, with the ids :meth:`read` drew (it must have run first)."""
        raw: Any = conn.connection.driver_connection  # a psycopg.Connection
        with raw.cursor() as cursor:
            types = self._column_types(conn, cursor)
            report_ids, run_ids = self.report_ids, self.run_ids
            runs: list[Row] = []
            rows: list[Row] = []
            values = 0
            keys: set[tuple[Any, ...]] = set()
            report_ids = report_ids[:len(reports)]  # read() drew one per report of the group
            for report_pk, report in zip(report_ids, reports, strict=True):
                for run in report.runs:
                    run_id = run_ids[len(runs)]
                    runs.append((run_id, report_pk, *run.run))
                    if run.measurements:
                        row, key = values_row(run_id, report_pk, run.shared,
                                              run.measurements)
                        rows.append(row)
                        keys.add(key)
                        values += len(run.measurements)
            self._copy(conn, cursor, types, self.report_copy,
                       [(pk, *r.report) for pk, r in zip(report_ids, reports, strict=True)])
            self._copy(conn, cursor, types, self.run_copy, runs)
            self._copy(conn, cursor, types, self.measurement_copy, rows)
            self._add_keys(conn, cursor, keys)
        return values

    def _add_keys(self, conn: Connection, cursor: Any, keys: set[tuple[Any, ...]]) -> None:
        """The batch's keys this process has not seen committed lately, into
        ``measurement_key`` in the transaction of their runs (one statement, and none at
        all once an agent's shapes are known: most uploads; sending them every time cost
        ~1.7 ms of the collector's CPU and ~1.1 ms of the server's per upload). In key
        order, so two uploads adding the same new keys cannot deadlock."""
        keys -= known_keys(conn.engine)
        if not keys:
            return
        self.new_keys = keys
        ordered = sorted(keys, key=lambda k: (k[0], k[1], k[2] is not None, k[2] or "", k[3]))
        marks = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(ordered))
        statement = self.KEYS.format(marks)
        with as_sqlalchemy_error(conn, statement):
            cursor.execute(statement, [v if i < 4 else list(v)
                                       for key in ordered for i, v in enumerate(key)])

    def committed(self) -> None:
        known_keys(self.engine).update(self.new_keys)

    def _column_types(self, conn: Connection, cursor: Any) -> dict[tuple[str, str], int]:
        known = _COLUMN_TYPES.get(conn.engine)
        if known is None:
            with as_sqlalchemy_error(conn, self.TYPES):
                cursor.execute(self.TYPES)
                known = {(table, name): oid for table, name, oid in cursor.fetchall()}
            _COLUMN_TYPES[conn.engine] = known
        return known

    @staticmethod
    def _copy(conn: Connection, cursor: Any, types: dict[tuple[str, str], int],
              target: tuple[str, str, tuple[str, ...]], rows: list[Row]) -> None:
        table, statement, names = target
        if not rows:
            return
        # psycopg's binary int4 dumper wraps an out-of-range int instead of refusing it:
        # wire_validation refuses such integers first (a 422); the ids are int8 (0006).
        with as_sqlalchemy_error(conn, statement), cursor.copy(statement) as copy:
            copy.set_types([BYTEA if name in VALUE_ARRAYS and table == "measurement_run"
                            else types[table, name] for name in names])
            for row in rows:
                copy.write_row(row)


class CoreWriter:
    """Any other database: SQLAlchemy Core, one statement per report and probe run."""

    def __init__(self) -> None:
        self.stamp: Callable[[datetime], Any] = _unchanged
        self.read = read_separately
        self.committed = _nothing

    def write(self, conn: Connection, reports: list[ReportRows]) -> int:
        rows: list[dict[str, Any]] = []
        names = _measurement_columns()
        for report in reports:
            report_pk = _insert(conn, Report, dict(zip(REPORT_COLUMNS, report.report,
                                                       strict=True)))
            for run in report.runs:
                run_id = _insert(conn, ProbeRun, dict(zip(RUN_COLUMNS, run.run, strict=True),
                                                      report_pk=report_pk))
                head = (report_pk, run_id, *run.shared)
                rows.extend(dict(zip(names, head + own, strict=True))
                            for own in run.measurements)
        if rows:
            conn.execute(insert(table_of(Measurement)), rows)
        return len(rows)


def _insert(conn: Connection, model: Any, values: dict[str, Any]) -> Any:
    """Insert one row; its new primary key."""
    key = conn.execute(insert(table_of(model)), values).inserted_primary_key
    assert key is not None
    return key[0]


def _nothing() -> None:
    """SQLite and other databases keep no readiness keys (one row per value)."""


def _unchanged(value: datetime) -> datetime:
    return value  # SQLAlchemy binds it (through UTCDateTime)


def writer_for(conn: Connection) -> Writer:
    """The fastest writer for ``conn``'s database."""
    dialect = conn.dialect
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        return SqliteWriter(conn)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return CopyWriter(conn)
    return CoreWriter()

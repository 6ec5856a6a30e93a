"""PostgreSQL keeps a probe run's measurements in one row (revision 0008).

An upload of 20 agent reports is ~560 values in ~120 probe runs, and 11 of a value's 18
columns are its run's (report, agent, site, room, time, probe, target, period, in lesson).
On PostgreSQL each run is one row of ``measurement_run`` with the per-value columns as
parallel arrays, and ``measurement`` is a view that unnests them, so every reader sees
the rows of :class:`collector.models.Measurement` as before. The database's CPU per
upload fell from 14.6-16.4 to 6.0-9.0 ms (docs/per-run-storage.md). SQLite keeps one
row per value: it serves one school, and has no arrays.

The view's ``id`` is ``run id × 65,536 + position`` (1-based): the order of a run's
values, unique as a run has at most 200 (``agent.wire.MAX_MEASUREMENTS_PER_RESULT``,
enforced on upload: a run is one entry of the readiness index, which PostgreSQL caps at
2,704 bytes). Ingest writes the table; the view
also takes ``INSERT`` (a trigger appends to the run's arrays), for fixtures and tools
that write :class:`~collector.models.Measurement` rows.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlmodel import SQLModel

from collector.models import UTCDateTime

metadata = MetaData()
measurement_run = Table(
    "measurement_run", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),  # proberun.id
    Column("report_pk", BigInteger, nullable=False, index=True),
    Column("agent_id", String, nullable=False, index=True),
    Column("site_id", Integer, nullable=False),
    Column("room_id", Integer, nullable=False),
    Column("time", UTCDateTime, nullable=False),
    Column("probe", String, nullable=False),
    Column("target", String(collation="C")),
    Column("period", String(40)),
    Column("in_lesson", Boolean),
    Column("shape", BigInteger, nullable=False),
    Column("metric", ARRAY(Text), nullable=False),
    Column("value", ARRAY(Float(53)), nullable=False),
    Column("text", ARRAY(Text), nullable=False),
    Column("unit", ARRAY(Text), nullable=False),
    Column("method", ARRAY(Text), nullable=False),
    Column("stat", ARRAY(Text), nullable=False),
    Column("samples", ARRAY(Integer), nullable=False),
    Index("ix_measurement_run_room_time", "room_id", "time"),
    Index("ix_measurement_run_samples", "site_id", "probe", "target", "shape", "time",
          postgresql_include=["in_lesson", "agent_id", "room_id", "period", "report_pk",
                              "value"]),
)
"""The table behind the view (revision 0008 creates it, with ``COLLATE "C"`` on the
``metric`` and ``stat`` arrays as on 0007's columns). ``ix_measurement_run_samples`` is
readiness's: a (probe, target, shape)'s runs in time order with every value, read
without the heap."""
measurement_key = Table(
    "measurement_key", metadata,
    Column("site_id", Integer, nullable=False),
    Column("probe", String, nullable=False),
    Column("target", String(collation="C")),
    Column("shape", BigInteger, nullable=False),
    Column("metric", ARRAY(Text), nullable=False),
    Column("stat", ARRAY(Text), nullable=False),
    Column("unit", ARRAY(Text), nullable=False),
    Index("ux_measurement_key", "site_id", "probe", "target", "shape", unique=True,
          postgresql_nulls_not_distinct=True),
)
"""The shapes each (probe, target) of a site has, with their arrays: a few rows per
probe and target, written with every upload that has runs of them (``ON CONFLICT DO
NOTHING``: in the same transaction as the runs, so it always names them all), never
removed.
Readiness finds its groups here and where each value sits in a run."""
KEY_COLUMNS = ("site_id", "probe", "target", "shape", "metric", "stat", "unit")
REBUILD_KEYS = (f"INSERT INTO measurement_key ({', '.join(KEY_COLUMNS)})"
                f" SELECT DISTINCT ON (site_id, probe, target, shape) {', '.join(KEY_COLUMNS)}"
                " FROM measurement_run ON CONFLICT DO NOTHING")
"""``measurement_key`` from the runs, for a bulk load that wrote ``measurement_run``
itself (ingest keeps it up to date)."""
RUN_COLUMNS = ("id", "report_pk", "agent_id", "site_id", "room_id", "time", "probe",
               "target", "period", "in_lesson", "shape")
VALUE_ARRAYS = ("metric", "value", "text", "unit", "method", "stat", "samples")


@lru_cache(maxsize=4096)
def shape_of(metric: tuple[str, ...], stat: tuple[str, ...], unit: tuple[str, ...]) -> int:
    """A run's shape: the first 8 bytes of SHA-256 of its metric, stat and unit names (US
    and RS separated), as a signed 64-bit integer; the database's ``measurement_shape()``
    gives the same (a test holds them equal)."""
    text = "\x1e".join("\x1f".join(names) for names in (metric, stat, unit))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def schema_metadata(dialect: str) -> MetaData:
    """The tables the newest revision makes on ``dialect``: the models', and on
    PostgreSQL ``measurement_run`` in place of the ``measurement`` table (a view)."""
    if dialect != "postgresql":
        return SQLModel.metadata
    out = MetaData()
    for table in SQLModel.metadata.tables.values():
        if table.name != "measurement":
            table.to_metadata(out)
    measurement_run.to_metadata(out)
    measurement_key.to_metadata(out)
    return out

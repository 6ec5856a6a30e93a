"""PostgreSQL's rows for a probe run's values: one row of ``measurement_run`` and its key.

:class:`collector.services.ingest_write.CopyWriter` writes a run's values as one row
(:mod:`collector.measurement_runs`): the run's columns once, its shape, and the values as
arrays in PostgreSQL's binary format (:mod:`collector.services.pg_arrays`). Its
(site, probe, target, shape) key goes to ``measurement_key`` with it.
"""

from __future__ import annotations

from typing import Any

from collector.measurement_runs import shape_of
from collector.services.pg_arrays import float8_array, int4_array, text_array

Row = tuple[Any, ...]


def values_row(run_id: int, report_pk: int, shared: Row,
               measurements: list[Row]) -> tuple[Row, tuple[Any, ...]]:
    """A probe run's row of ``measurement_run`` (``ingest_write.MEASUREMENT_SHARED`` once, its
    shape, and ``ingest_write.MEASUREMENT_OWN`` as arrays: binary, :mod:`collector.services.
    pg_arrays`), and its row of ``measurement_key``."""
    agent_id, site_id, room_id, started, probe, target, period, in_lesson = shared
    metric, value, text, unit, method, stat, samples = zip(*measurements, strict=True)
    shape = shape_of(metric, stat, unit)
    return ((run_id, report_pk, agent_id, site_id, room_id, started, probe, target, period,
             in_lesson, shape, text_array(metric), float8_array(value), text_array(text),
             text_array(unit), text_array(method), text_array(stat), int4_array(samples)),
            (site_id, probe, target, shape, metric, stat, unit))

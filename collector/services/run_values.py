"""PostgreSQL's rows for a probe run's values: one row of ``measurement_run`` and its key.

:class:`collector.services.ingest_write.CopyWriter` writes a run's values as one row
(:mod:`collector.measurement_runs`): the run's columns once, its shape, and the values as
arrays in PostgreSQL's binary format (:mod:`collector.services.pg_arrays`). The
(site, probe, target, shape) keys readiness reads go to ``measurement_key`` when this
process has not seen them committed lately (:func:`known_keys`).
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from sqlalchemy import Engine

from collector.measurement_runs import shape_of
from collector.services.pg_arrays import float8_array, int4_array, text_array

Row = tuple[Any, ...]

_KNOWN_KEYS: weakref.WeakKeyDictionary[Engine, tuple[float, set[tuple[Any, ...]]]] = \
    weakref.WeakKeyDictionary()
KNOWN_KEYS_FOR_S = 600.0
"""How long this process trusts its record of the keys it has seen committed; then it
sends them again (``ON CONFLICT DO NOTHING``). A key names a shape, not a run: the only
way the record can be wrong is a database that lost committed rows underneath a running
collector (restored from a backup older than a shape's first run, or wiped); readiness
then leaves that shape's runs out until the record expires and the next upload of the
shape adds its key back, at most this long. Restart the collectors after a restore."""


def known_keys(engine: Engine) -> set[tuple[Any, ...]]:
    """The keys this process has seen committed to ``engine``'s database lately."""
    now = time.monotonic()
    held = _KNOWN_KEYS.get(engine)
    if held is None or now - held[0] > KNOWN_KEYS_FOR_S:
        held = _KNOWN_KEYS[engine] = (now, set())
    return held[1]


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

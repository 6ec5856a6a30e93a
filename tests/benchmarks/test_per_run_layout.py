"""The per-run layout prototype the ingest cost benchmark prices: its binary arrays are the
bytes psycopg itself would send, and a batch stored through it holds exactly the values
the collector's own writer stores as ``measurement`` rows."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import pytest
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import Format
from sqlalchemy import text

from benchmarks.ingest_cost import _agents
from benchmarks.load_shape import AGENT_MIX, BatchStamp
from benchmarks.per_run_layout import (
    ARRAYS,
    DDL,
    PerRunWriter,
    float8_array,
    int4_array,
    text_array,
)
from collector.db import init_db, make_engine
from collector.services import ingest
from collector.services.ingest import store_batch
from collector.wire_validation import parse_batch

FLOAT8_ARRAY, INT4_ARRAY, TEXT_ARRAY = 1022, 1007, 1009


def psycopg_binary(array_oid: int, values: list[object]) -> bytes:
    tx = Transformer()
    tx.set_dumper_types([array_oid], Format.BINARY)
    dumped = tx.dump_sequence([values], [PyFormat.BINARY])[0]
    assert dumped is not None
    return bytes(dumped)


@pytest.mark.parametrize("values", [
    [1.5, -0.0, 3.0, 1e308, 5e-324], [None, 2.25], [None], [], [-61.0] * 70])
def test_float8_arrays_are_psycopgs_bytes(values: list[float | None]) -> None:
    assert float8_array(values) == psycopg_binary(FLOAT8_ARRAY, list(values))


@pytest.mark.parametrize("values", [("dns_ms", "é 東", ""), (None, "ms"), (None,), ()])
def test_text_arrays_are_psycopgs_bytes(values: tuple[str | None, ...]) -> None:
    assert text_array(values) == psycopg_binary(TEXT_ARRAY, list(values))


@pytest.mark.parametrize("values", [(1, 5, 2**31 - 1, -2**31), (0,), ()])
def test_int4_arrays_are_psycopgs_bytes(values: tuple[int, ...]) -> None:
    assert int4_array(values) == psycopg_binary(INT4_ARRAY, list(values))


@pytest.mark.slow
def test_a_batch_through_the_per_run_layout_holds_what_measurement_rows_hold(
        pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        init_db(engine)
        with engine.begin() as conn:
            for statement in DDL:
                conn.exec_driver_sql(statement)
        who = _agents(engine)[0]
        stamp = BatchStamp.build(AGENT_MIX, 20, at=datetime(2026, 11, 27, 9, 5, tzinfo=UTC))
        now = datetime.now(UTC)
        store_batch(engine, who, parse_batch(stamp.body(who.agent_id)), now)  # per value
        with mock.patch.object(ingest, "writer_for", PerRunWriter):
            store_batch(engine, who, parse_batch(stamp.body(who.agent_id)), now)  # per run
        shared = ("agent_id", "site_id", "room_id", "probe", "target", "period", "in_lesson")
        with engine.connect() as conn:
            per_value = conn.execute(text(
                f"SELECT {', '.join('m.' + c for c in (*shared, *ARRAYS, 'time'))}"
                " FROM measurement m JOIN proberun p ON p.id = m.probe_run_id"
                " WHERE p.metric IS NULL")).all()
            per_run = conn.execute(text(
                f"SELECT {', '.join('p.' + c for c in shared)}, u.*, p.started_at"
                " FROM proberun p,"
                f" unnest({', '.join('p.' + a for a in ARRAYS)})"
                f" AS u({', '.join(ARRAYS)}) WHERE p.metric IS NOT NULL")).all()
            runs_with_values = conn.execute(text(
                "SELECT count(*) FROM proberun WHERE metric IS NOT NULL")).scalar()
    finally:
        engine.dispose()
    assert len(per_value) == stamp.measurements == 564
    assert runs_with_values == 120  # 20 reports of 6 probe runs, one row each
    assert sorted(map(tuple, per_run), key=repr) == sorted(map(tuple, per_value), key=repr)

"""The binary arrays ingest sends PostgreSQL are the bytes psycopg itself would send (that
ingest stores the values they hold: ``test_ingest_write``, ``test_measurement_runs``)."""

from __future__ import annotations

import pytest
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import Format

from collector.services.pg_arrays import float8_array, int4_array, text_array

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

"""PostgreSQL's binary array format, packed with :mod:`struct` for binary ``COPY``.

Ingest writes each probe run's values as arrays (:mod:`collector.measurement_runs`);
psycopg's own list dumper is Python code per element and cost ~2 ms more of the
collector's CPU per 20-report upload than these. The bytes are psycopg's own (a test
holds them equal) and go to the server as opaque ``bytea`` (:data:`BYTEA`), which binary
``COPY`` hands to the column's receive function. The text arrays of a probe (its metric,
unit, method and stat names) repeat from run to run, so their packed form is cached.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache

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

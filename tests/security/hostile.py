"""Hypothesis strategies for hostile request bodies: a valid document with one value
swapped for something wrong, or raw bytes no parser should choke on."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

SQL = ["'; DROP TABLE report; --", "1 OR 1=1", "\" OR \"\"=\"", "Robert'); DELETE FROM agent;--",
       "%' UNION SELECT credential_hash FROM agent --"]
FAR_TIMES = ["9999-12-31T23:59:59Z", "3000-01-01T00:00:00+00:00", "0001-01-01T00:00:00Z",
             "2026-02-30T09:00:00Z", "2026-03-02T09:00:00", "2026-03-02T25:61:00Z",
             "+275760-09-13T00:00:00Z", "1e400", "now"]
NUMBERS = [float("nan"), float("inf"), float("-inf"), 10 ** 30, -(10 ** 30), 2 ** 63, -1,
           0, 1e308, -0.0]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2 ** 80), max_value=2 ** 80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NUMBERS),
    st.text(max_size=40),
    st.sampled_from(SQL + FAR_TIMES + ["\x00", "\ud800", "ﬀ" * 50, "x" * 5000, ""]),
)
values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4)
                      | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, (*prefix, i))
    return found


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(doc)
    holder = out
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    return out


def _deep(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any]) -> bytes:
    """``valid`` with one value (or the whole document) replaced, a key added or
    dropped, or a list made huge; serialised with NaN/Infinity allowed."""
    how = draw(st.sampled_from(["replace", "add", "drop", "huge"]))
    paths = _paths(valid)
    path = draw(st.sampled_from(paths))
    if how == "replace":
        doc = _replace(valid, path, draw(values))
    elif how == "add":
        doc = copy.deepcopy(valid)
        doc[draw(st.text(min_size=1, max_size=10))] = draw(values)
    elif how == "drop" and path:
        doc = copy.deepcopy(valid)
        holder = doc
        for key in path[:-1]:
            holder = holder[key]
        holder.pop(path[-1]) if isinstance(holder, (dict, list)) else None
    else:
        doc = _replace(valid, path, [draw(scalars)] * draw(st.sampled_from([1000, 100_000])))
    return json.dumps(doc, allow_nan=True).encode()


RAW = [
    b"", b"null", b"[]", b"{}", b"NaN", b"Infinity", b'{"a": NaN}', b'{"a": -Infinity}',
    b"\xff\xfe\x00", b'{"note": "\xff\xfe"}', b'{"room": "\xc3\x28"}', b"\xef\xbb\xbf{}",
    b'{"a": 1, "a": 2}', b"1" * 4_000,
    b'"' + b"\\u0000" * 1000 + b'"', b"{" * 3 + b"}" * 2,
]
KNOWN_500 = [b"[" * 100_000, _deep(2_000), _deep(100_000), b"1" * 10_000]
"""Bodies that still get a 500 (json.loads raises RecursionError or ValueError for an
integer of more than 4300 digits, which collector.wire_validation._load_json and
collector.routers.timetable._document do not catch): kept out of the fuzzing and tested
as a known failure in test_fuzz.py until they are fixed."""

raw_bodies = st.one_of(st.sampled_from(RAW), st.binary(max_size=300))


def hostile(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(valid), raw_bodies)

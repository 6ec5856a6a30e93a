"""Validate agent uploads against the wire dataclasses in :mod:`agent.wire`.

Types are checked by pydantic (strict JSON mode: no silent "1.5" → 1.5 coercion), then
:func:`agent.wire.semantic_errors` checks what types cannot. Every error names the field
and the bad value, and the caller turns it into a 4xx.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from agent.wire import (
    SUPPORTED_SCHEMA_VERSIONS,
    EnrolRequest,
    ReportBatch,
    semantic_errors,
)

T = TypeVar("T")


class WireError(ValueError):
    """An upload that does not fit the wire format; ``problems`` lists why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class NotJSONError(WireError):
    """The body is not JSON at all (a 400, where a JSON body of the wrong shape is a 422)."""


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        # ValueError: bad JSON, or an integer past Python's digit limit; RecursionError:
        # nesting deeper than the parser's stack (both were 500s under fuzzing)
        raise NotJSONError([f"body is not valid JSON: {type(exc).__name__}: "
                            f"{str(exc)[:200]}"]) from exc


@cache
def batch_adapter() -> TypeAdapter[ReportBatch]:
    return TypeAdapter(ReportBatch)


@cache
def enrol_adapter() -> TypeAdapter[EnrolRequest]:
    return TypeAdapter(EnrolRequest)


def _pydantic_problems(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        given = err.get("input")
        shown = repr(given) if not isinstance(given, dict | list) else type(given).__name__
        out.append(f"{loc or 'body'}: {err['msg']} (got {shown[:80]})")
    return out


def parse_batch(body: bytes) -> ReportBatch:
    """Parse and fully validate a ``POST /api/v1/reports`` body."""
    raw = _load_json(body)
    if isinstance(raw, dict):
        version = raw.get("schema_version")
        unhashable = isinstance(version, dict | list)  # `in` a frozenset would raise
        if version is not None and (unhashable or version not in SUPPORTED_SCHEMA_VERSIONS):
            supported = sorted(SUPPORTED_SCHEMA_VERSIONS)
            raise WireError([f"unsupported schema_version {version!r}; supported: {supported}"])
    try:
        batch = batch_adapter().validate_json(body, strict=True)
    except ValidationError as exc:
        raise WireError(_pydantic_problems(exc)) from exc
    problems = [p for report in batch.reports for p in semantic_errors(report)]
    if not batch.reports:
        problems.append("reports: the batch is empty")
    if problems:
        raise WireError(problems)
    return batch


def parse_with(adapter: TypeAdapter[T], body: bytes) -> T:
    """``body`` as the adapter's wire type, strictly typed; raises :class:`WireError`."""
    _load_json(body)
    try:
        return adapter.validate_json(body, strict=True)
    except ValidationError as exc:
        raise WireError(_pydantic_problems(exc)) from exc


def parse_enrol(body: bytes) -> EnrolRequest:
    req = parse_with(enrol_adapter(), body)
    problems = []
    if not req.room.strip():
        problems.append("room: must not be empty")
    if len(req.room) > 100:
        problems.append(f"room: {len(req.room)} characters is too long (max 100)")
    if problems:
        raise WireError(problems)
    return req


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the upload body, as checked in at ``agent/wire.schema.json``."""
    schema: dict[str, Any] = batch_adapter().json_schema()
    return schema


if __name__ == "__main__":  # python -m collector.wire_validation > agent/wire.schema.json
    print(json.dumps(json_schema(), indent=2, sort_keys=True))

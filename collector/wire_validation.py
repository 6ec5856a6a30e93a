"""Validate agent uploads against the wire dataclasses in :mod:`agent.wire`.

Types are checked by pydantic (strict JSON mode: no silent "1.5" → 1.5 coercion), then
:func:`agent.wire.semantic_errors` checks what types cannot, and :func:`parse_batch` the
integers the database cannot hold. Every error names the field and the bad value, and the
caller turns it into a 4xx. A report batch is parsed once, from the bytes, by pydantic;
only a rejected one is parsed again with :mod:`json` to say why.
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
INTEGER_MAX = 2**31 - 1
"""The largest integer the database's INTEGER columns hold (PostgreSQL ``integer``)."""


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


def _schema_version_problem(version: object) -> str | None:
    unhashable = isinstance(version, dict | list)  # `in` a frozenset would raise
    if version is not None and (unhashable or version not in SUPPORTED_SCHEMA_VERSIONS):
        return (f"unsupported schema_version {version!r}; "
                f"supported: {sorted(SUPPORTED_SCHEMA_VERSIONS)}")
    return None


def _too_large(batch: ReportBatch) -> list[str]:
    """Integers JSON allows but the database cannot store (a 500 before this check)."""
    out = []
    for report in batch.reports:
        where = f"report {report.report_id}"
        if report.spool_dropped > INTEGER_MAX:  # schema_version: semantic_errors checks it
            out.append(f"{where}: spool_dropped {report.spool_dropped} is above {INTEGER_MAX}")
        for i, result in enumerate(report.results):
            out.extend(f"{where} results[{i}] measurements[{j}]: samples {m.samples} is "
                       f"above {INTEGER_MAX}" for j, m in enumerate(result.measurements)
                       if m.samples > INTEGER_MAX)
    return out


def parse_batch(body: bytes) -> ReportBatch:
    """Parse and fully validate a ``POST /api/v1/reports`` body.

    A good body is parsed once, by pydantic straight from the bytes. Only a body that
    fails is parsed again with :mod:`json`, to tell "not JSON at all" (400) from "JSON of
    the wrong shape" (422) and to name an unsupported ``schema_version`` before anything
    else, exactly as before the fast path existed."""
    try:
        batch = batch_adapter().validate_json(body, strict=True)
    except ValidationError as exc:
        raw = _load_json(body)  # raises NotJSONError for a body that is not JSON at all
        version = _schema_version_problem(raw.get("schema_version")) if isinstance(
            raw, dict) else None
        raise WireError([version] if version else _pydantic_problems(exc)) from exc
    version = _schema_version_problem(batch.schema_version)
    if version:
        raise WireError([version])
    problems = [p for report in batch.reports for p in semantic_errors(report)]
    problems.extend(_too_large(batch))
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

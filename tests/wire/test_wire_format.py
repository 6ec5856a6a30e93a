"""The wire format: schema checked in, semantic checks name the bad value."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.wire import (
    Measurement,
    ProbeResult,
    Report,
    ReportBatch,
    new_report,
    semantic_errors,
    to_jsonable,
)
from collector.wire_validation import WireError, json_schema, parse_batch

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "agent" / "wire.schema.json"
T0 = datetime(2026, 11, 27, 9, 5, tzinfo=UTC)


def _result(**kw: object) -> ProbeResult:
    base = ProbeResult(
        probe="latency",
        status="ok",
        started_at=T0,
        finished_at=T0 + timedelta(seconds=1),
        target="https://teams.microsoft.com/",
        measurements=[
            Measurement("tcp_connect_ms", "ms", "tcp_connect", value=23.5, stat="p50", samples=5)
        ],
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _report(*results: ProbeResult) -> Report:
    return Report(
        report_id=uuid.UUID(int=7),
        agent_id="agent-1",
        created_at=T0,
        agent_version="0.1.0",
        results=list(results) or [_result()],
    )


def _body(report: Report) -> bytes:
    return json.dumps(to_jsonable(ReportBatch(reports=[report]))).encode()


def test_checked_in_schema_matches_the_dataclasses() -> None:
    checked_in = json.loads(SCHEMA_FILE.read_text())
    assert checked_in == json_schema(), (
        "agent/wire.py changed without agent/wire.schema.json: regenerate it with "
        "`python -m collector.wire_validation > agent/wire.schema.json` and bump "
        "SCHEMA_VERSION if the change is not backwards compatible"
    )


def test_round_trip_through_json_keeps_every_field() -> None:
    report = _report()
    parsed = parse_batch(_body(report)).reports[0]
    assert parsed == report
    assert parsed.created_at.tzinfo is not None


def test_new_report_ids_are_random_uuids_and_times_are_aware() -> None:
    a, b = new_report("x", "0.1", []), new_report("x", "0.1", [])
    assert a.report_id != b.report_id and a.report_id.version == 4
    assert a.created_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"status": "failed", "reason": None, "measurements": []},
            "status 'failed' needs a reason",
        ),
        ({"status": "skipped", "reason": "no ICMP"}, "must not carry measurements"),
        ({"started_at": T0.replace(tzinfo=None)}, "started_at 2026-11-27T09:05:00 has no timezone"),
        ({"finished_at": T0 - timedelta(seconds=1)}, "finished_at is before started_at"),
        (
            {"measurements": [Measurement("tcp_connect_ms", "ms", "tcp", value=-1.0)]},
            "value -1.0 is below 0",
        ),
        (
            {"measurements": [Measurement("loss_pct", "%", "icmp", value=250.0)]},
            "value 250.0 is above 100",
        ),
        (
            {"measurements": [Measurement("tcp_connect_ms", "s", "tcp", value=1.0)]},
            "has unit 'ms', got 's'",
        ),
        (
            {"measurements": [Measurement("speed", "Mbps", "x", value=1.0)]},
            "unknown metric 'speed'",
        ),
        (
            {"measurements": [Measurement("cpu_model", "text", "psutil", value=1.0)]},
            "is text: set 'text'",
        ),
        ({"measurements": [Measurement("dns_ms", "ms", "", value=1.0)]}, "method is empty"),
        (
            {"measurements": [Measurement("dns_ms", "ms", "x", value=1.0, samples=0)]},
            "samples 0 must be >= 1",
        ),
    ],
)
def test_semantic_errors_name_the_bad_value(change: dict[str, object], expected: str) -> None:
    errors = semantic_errors(_report(_result(**change)))
    assert any(expected in e for e in errors), errors


def test_a_clean_report_has_no_semantic_errors() -> None:
    assert semantic_errors(_report()) == []


def test_a_probe_run_fits_one_index_entry() -> None:
    """On PostgreSQL a run is one row and one readiness index entry (capped by the
    database): at most 200 values, a probe name of 64 and a target of 500 characters."""
    one = Measurement("dns_ms", "ms", "getaddrinfo", value=1.0)
    at = "report 00000000-0000-0000-0000-000000000007 results[0]"
    fits = _result(probe="p" * 64, target="t" * 500, measurements=[one] * 200)
    assert semantic_errors(_report(fits)) == []
    assert semantic_errors(_report(_result(measurements=[one] * 201))) == [
        f"{at} (latency): 201 measurements, at most 200 in one probe run"]
    assert semantic_errors(_report(_result(probe="p" * 65))) == [
        f"{at} ({'p' * 65}): probe name of 65 characters, at most 64"]
    assert semantic_errors(_report(_result(target="t" * 501))) == [
        f"{at} (latency): target of 501 characters, at most 500"]


def test_nan_and_infinity_are_rejected_by_the_collector_parser() -> None:
    report = _report(
        _result(
            measurements=[Measurement("tcp_connect_ms", "ms", "tcp_connect", value=float("nan"))]
        )
    )
    with pytest.raises(WireError, match="value nan is not finite"):
        parse_batch(_body(report))


def test_strict_types_no_silent_coercion_of_strings_to_numbers() -> None:
    data = to_jsonable(ReportBatch(reports=[_report()]))
    data["reports"][0]["results"][0]["measurements"][0]["value"] = "23.5"
    with pytest.raises(WireError, match="value"):
        parse_batch(json.dumps(data).encode())


def test_unknown_schema_version_is_named() -> None:
    data = to_jsonable(ReportBatch(reports=[_report()]))
    data["schema_version"] = 99
    with pytest.raises(WireError, match="unsupported schema_version 99"):
        parse_batch(json.dumps(data).encode())


def test_malformed_json_is_named() -> None:
    with pytest.raises(WireError, match="not valid JSON"):
        parse_batch(b'{"reports": [')

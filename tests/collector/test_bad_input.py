"""Bad uploads get a 4xx that names the problem, store nothing, and leave the service up."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from collector.models import Measurement, ProbeRun, Report
from collector.services.sites import revoke_agent
from tests.collector.conftest import (
    Enrolled,
    batch_body,
    batch_dict,
    count,
    failed_result,
    make_report,
)

Mutation = Callable[[dict[str, Any]], None]


def _measurement(field: str, value: Any) -> Mutation:
    def mutate(batch: dict[str, Any]) -> None:
        batch["reports"][0]["results"][0]["measurements"][0][field] = value
    return mutate


def _report(field: str, value: Any) -> Mutation:
    def mutate(batch: dict[str, Any]) -> None:
        batch["reports"][0][field] = value
    return mutate


def _failed_with_measurements(batch: dict[str, Any]) -> None:
    result = batch["reports"][0]["results"][0]
    result.update(status="failed", reason="timed out")


def assert_nothing_stored(engine: Engine) -> None:
    assert (count(engine, Report), count(engine, ProbeRun), count(engine, Measurement)) == (0, 0, 0)


def assert_still_works(client: TestClient, who: Enrolled) -> None:
    resp = client.post("/api/v1/reports", headers=who.headers,
                       content=batch_body(make_report(who.agent_id)))
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["accepted"]) == 1


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda b: b.update(schema_version=99), "unsupported schema_version 99; supported: [1]"),
    (lambda b: b.update(schema_version=[1]), "unsupported schema_version [1]"),
    (_report("schema_version", 2), "unsupported schema_version 2"),
    (_measurement("value", float("nan")), "metric 'tcp_connect_ms': value nan is not finite"),
    (_measurement("value", -5.0), "metric 'tcp_connect_ms': value -5.0 is below 0"),
    (_measurement("value", 1e12), "metric 'tcp_connect_ms': value 1000000000000.0 is above"),
    (_measurement("value", "42"), "measurements.0.value: Input should be a valid number"),
    (_measurement("metric", "rtt_ms"), "unknown metric 'rtt_ms'"),
    (_measurement("unit", "s"), "metric 'tcp_connect_ms' has unit 'ms', got 's'"),
    (_measurement("samples", 0), "samples 0 must be >= 1"),
    (_report("created_at", "2025-03-03T09:00:00"), "created_at 2025-03-03T09:00:00 has no "
                                                   "timezone"),
    (_report("report_id", "not-a-uuid"), "report_id: Input should be a valid UUID"),
    (_failed_with_measurements, "status 'failed' must not carry measurements"),
    (lambda b: b.update(reports=[]), "reports: the batch is empty"),
])
def test_schema_problems_are_422_naming_the_value(client: TestClient, enrolled: Enrolled,
                                                  engine: Engine, mutate: Mutation,
                                                  expected: str) -> None:
    batch = batch_dict(make_report(enrolled.agent_id), make_report(enrolled.agent_id))
    mutate(batch)
    resp = client.post("/api/v1/reports", headers=enrolled.headers,
                       content=json.dumps(batch).encode())
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["detail"] == "report batch does not fit the wire format"
    assert any(expected in p for p in body["problems"]), body["problems"]
    assert_nothing_stored(engine)
    assert_still_works(client, enrolled)


@pytest.mark.parametrize("body", [b'{"reports": [', b"\xff\xfe", b"", b"NaN]"])
def test_not_json_is_400(client: TestClient, enrolled: Enrolled, engine: Engine,
                         body: bytes) -> None:
    resp = client.post("/api/v1/reports", headers=enrolled.headers, content=body)
    assert resp.status_code == 400
    assert resp.json()["problems"][0].startswith("body is not valid JSON")
    assert_nothing_stored(engine)
    assert_still_works(client, enrolled)


def test_json_that_is_not_an_object_is_422(client: TestClient, enrolled: Enrolled) -> None:
    resp = client.post("/api/v1/reports", headers=enrolled.headers, content=b"[1, 2]")
    assert resp.status_code == 422
    assert resp.json()["problems"] == ["body: Input should be an object (got list)"]


@pytest.mark.both_backends
@pytest.mark.parametrize(("headers", "expected"), [
    ({}, "missing 'Authorization: Bearer <credential>' header"),
    ({"Authorization": "Basic abc"}, "Authorization scheme 'Basic' is not 'Bearer <credential>'"),
    ({"Authorization": "Bearer wrong-credential"},
     "agent credential not recognised: enrol the agent again"),
])
def test_unknown_credential_is_401(client: TestClient, enrolled: Enrolled, engine: Engine,
                                   headers: dict[str, str], expected: str) -> None:
    resp = client.post("/api/v1/reports", headers=headers,
                       content=batch_body(make_report(enrolled.agent_id)))
    assert resp.status_code == 401
    assert resp.json() == {"detail": expected}
    assert resp.headers["www-authenticate"] == "Bearer"
    assert_nothing_stored(engine)
    assert_still_works(client, enrolled)


@pytest.mark.both_backends
def test_revoked_credential_is_401_at_once(client: TestClient, enrolled: Enrolled,
                                           engine: Engine) -> None:
    assert_still_works(client, enrolled)
    with Session(engine) as session:
        revoke_agent(session, enrolled.agent_id)
    before = count(engine, Report)
    resp = client.post("/api/v1/reports", headers=enrolled.headers,
                       content=batch_body(make_report(enrolled.agent_id)))
    assert resp.status_code == 401
    assert resp.json()["detail"] == (f"agent {enrolled.agent_id} has been revoked: enrol it "
                                     "again with a site token")
    assert count(engine, Report) == before


@pytest.fixture
def small_limit(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(app.state.settings, "max_body_bytes", 2048)
    return 2048


@pytest.mark.both_backends
def test_oversized_by_content_length_is_413(client: TestClient, enrolled: Enrolled,
                                            engine: Engine, small_limit: int) -> None:
    reports = [make_report(enrolled.agent_id) for _ in range(10)]
    body = batch_body(*reports)
    assert len(body) > small_limit
    resp = client.post("/api/v1/reports", headers=enrolled.headers, content=body)
    assert resp.status_code == 413
    assert resp.json()["detail"] == (f"report batch is larger than the 2048-byte limit "
                                     f"(Content-Length says {len(body)})")
    assert_nothing_stored(engine)
    assert_still_works(client, enrolled)


def test_oversized_chunked_without_content_length_is_413(client: TestClient, enrolled: Enrolled,
                                                         engine: Engine,
                                                         small_limit: int) -> None:
    body = batch_body(*[make_report(enrolled.agent_id) for _ in range(10)])

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 500):
            yield body[i:i + 500]

    resp = client.post("/api/v1/reports", headers=enrolled.headers, content=chunks())
    assert resp.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in resp.request.headers
    assert resp.status_code == 413
    assert resp.json()["detail"] == ("report batch is larger than the 2048-byte limit "
                                     "(more than 2048 bytes were sent)")
    assert_nothing_stored(engine)
    small = batch_body(make_report(enrolled.agent_id))
    resp = client.post("/api/v1/reports", headers=enrolled.headers, content=iter([small]))
    assert resp.status_code == 200, resp.text


def test_bad_content_length_is_400() -> None:
    from collector.errors import Problem
    from collector.streaming import declared_length

    class Fake:
        headers = {"content-length": "12abc"}

    with pytest.raises(Problem, match="Content-Length '12abc' is not a byte count") as info:
        declared_length(Fake())  # type: ignore[arg-type]
    assert info.value.status == 400


def test_unexpected_errors_are_json_500_without_traceback(app: FastAPI, enrolled: Enrolled,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from collector.services import ingest

    def boom(*_args: Any) -> None:
        raise RuntimeError("database exploded")

    monkeypatch.setattr(ingest, "_write_group", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.post("/api/v1/reports", headers=enrolled.headers,
                           content=batch_body(make_report(enrolled.agent_id)))
    assert resp.status_code == 500
    assert resp.json() == {"detail": "internal error (RuntimeError); see the collector's log"}
    assert "Traceback" not in resp.text


@pytest.mark.both_backends
def test_failed_result_without_reason_is_422(client: TestClient, enrolled: Enrolled) -> None:
    result = failed_result(reason="")
    resp = client.post("/api/v1/reports", headers=enrolled.headers,
                       content=batch_body(make_report(enrolled.agent_id, [result])))
    assert resp.status_code == 422
    assert any("status 'failed' needs a reason" in p for p in resp.json()["problems"])

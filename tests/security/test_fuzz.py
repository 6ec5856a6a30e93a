"""Fuzzing the upload endpoints with hostile bodies (hypothesis): never a 5xx, every
refusal is JSON with a ``detail``, and a refused request stores nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import Session, SQLModel

from tests.collector.conftest import batch_dict, latency_result, make_report
from tests.security.hostile import KNOWN_500, SQL, hostile
from tests.security.world import ROOM, SITE_A, T0, World, bearer, close_world, make_world

EXAMPLES = 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])

TIMETABLE = {"timezone": "Europe/London", "weekdays": ["mon", "tue"],
             "periods": [{"name": "P1", "start": "09:00", "end": "10:00", "note": "maths"}]}
PROFILE_TOML = """\
id = "acme-fuzz"
version = "2026.1"
title = "Acme fuzz"
citation = "Acme requirements"

[[requirements]]
id = "rtt"
metric = "tcp_connect_ms"
stat = "p50"
op = "<="
threshold = 100
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = make_world(tmp_path_factory.mktemp("fuzz"), agent_rate_per_minute=1_000_000)
    entered = w.client
    w.client = TestClient(w.app, raise_server_exceptions=False)  # a 500 is a status here
    yield w
    w.client = entered
    close_world(w)


def row_counts(w: World) -> dict[str, int]:
    with Session(w.app.state.engine) as db:
        return {name: int(db.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in SQLModel.metadata.tables.items()}


def check(w: World, send: Any) -> httpx.Response:
    before = row_counts(w)
    resp: httpx.Response = send()
    assert resp.status_code < 500, resp.text[:500]
    if resp.status_code >= 400:
        body = resp.json()
        assert isinstance(body.get("detail"), str) and body["detail"], body
        assert row_counts(w) == before, "a refused request stored something"
    return resp


def _valid_report(w: World) -> dict[str, Any]:
    return batch_dict(make_report(w.agent_a.agent_id, [latency_result(start=T0)]))


@FUZZ
@given(data=st.data())
def test_reports(world: World, data: st.DataObject) -> None:
    body = data.draw(hostile(_valid_report(world)))
    check(world, lambda: world.client.post("/api/v1/reports", content=body,
                                           headers=bearer(world.agent_a.credential)))


def test_reports_with_duplicate_ids_in_one_batch(world: World) -> None:
    report = _valid_report(world)["reports"][0]  # type: ignore[index]
    body = json.dumps({"reports": [report, report]}).encode()
    resp = check(world, lambda: world.client.post(
        "/api/v1/reports", content=body, headers=bearer(world.agent_a.credential)))
    assert resp.status_code in (200, 422), resp.text


@FUZZ
@given(data=st.data())
def test_enrol(world: World, data: st.DataObject) -> None:
    valid = {"token": world.site_token_a, "room": ROOM, "agent_version": "0.1.0"}
    body = data.draw(hostile(valid))
    check(world, lambda: world.client.post("/api/v1/enrol", content=body))


@FUZZ
@given(data=st.data())
def test_flags(world: World, data: st.DataObject) -> None:
    body = data.draw(hostile({"note": "projector", "created_at": "2026-03-02T09:00:00Z"}))
    check(world, lambda: world.client.post("/api/v1/flags", content=body,
                                           headers=bearer(world.agent_b.credential)))


@FUZZ
@given(data=st.data())
def test_timetable(world: World, data: st.DataObject) -> None:
    body = data.draw(hostile(TIMETABLE))
    check(world, lambda: world.client.put(f"/api/v1/sites/{quote(SITE_A)}/timetable",
                                          content=body, headers=bearer(world.admin_key)))


toml_text = st.one_of(
    st.text(max_size=300),
    st.sampled_from(SQL).map(lambda s: PROFILE_TOML.replace("Acme fuzz", s)),
    st.sampled_from(["threshold = nan", "threshold = inf", "threshold = 1e400",
                     "threshold = \"100\"", "threshold = []", "stat = 7",
                     "metric = \"no_such_metric\"", "op = \"DROP\""]).map(
        lambda line: PROFILE_TOML.replace(
            "threshold = 100" if line.startswith("threshold") else line.split(" =")[0] + " =",
            line if line.startswith("threshold") else line.split(" =")[0] + " =")),
    st.just("a." * 5000 + "b = 1"), st.just("x = " + "[" * 500 + "]" * 500),
    st.just("x = [" + "1," * 100_000 + "1]"),
    st.just(PROFILE_TOML + "\n[[requirements]]\n" + PROFILE_TOML.split("[[requirements]]\n")[1]),
    st.just('id = "acme-fuzz"\nid = "again"\n'),
)
toml_bodies = st.one_of(toml_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
                        st.binary(max_size=200),
                        st.just(b'id = "\xff\xfe"\n'))


@FUZZ
@given(body=toml_bodies)
def test_profiles(world: World, body: bytes) -> None:
    resp = check(world, lambda: world.client.post(
        "/api/v1/profiles", content=body,
        headers={**bearer(world.admin_key), "Content-Type": "application/toml"}))
    if resp.status_code == 201:  # a valid profile came out: remove nothing, just note it
        assert resp.json()["id"]


def test_deeply_nested_toml_is_a_422_not_a_500(world: World) -> None:
    body = ("x = " + "[" * 5000 + "]" * 5000).encode()
    check(world, lambda: world.client.post(
        "/api/v1/profiles", content=body,
        headers={**bearer(world.admin_key), "Content-Type": "application/toml"}))


@pytest.mark.parametrize("body", KNOWN_500, ids=["deep-array", "deep-2000", "deep-100000",
                                                 "10000-digits"])
def test_deep_nesting_and_huge_integers_are_4xx_not_500(world: World, body: bytes) -> None:
    for send in (lambda: world.client.post("/api/v1/reports", content=body,
                                           headers=bearer(world.agent_a.credential)),
                 lambda: world.client.put(f"/api/v1/sites/{quote(SITE_A)}/timetable",
                                          content=body, headers=bearer(world.admin_key)),
                 lambda: world.client.post("/api/v1/enrol", content=body)):
        check(world, send)


def test_service_keeps_serving_after_the_fuzzing(world: World) -> None:
    resp = world.client.get("/api/v1/agent/control", headers=bearer(world.agent_a.credential))
    assert resp.status_code == 200

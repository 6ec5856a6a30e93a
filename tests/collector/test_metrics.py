"""GET /metrics: ingest counters, agents per state, verdicts per profile, the token."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session

from collector.app import create_app
from collector.models import Agent, utcnow
from collector.services.metrics import VERDICT_STATUSES, StateCollector, stored_counts
from collector.services.profiles import profile_registry
from collector.services.sites import create_site, revoke_agent
from collector.settings import Settings
from tests.collector.conftest import (
    SITE,
    Enrolled,
    batch_body,
    enrol,
    failed_result,
    latency_result,
    make_report,
    set_always_in_lesson,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, **headers: str) -> Samples:
    resp = client.get("/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def ingested(samples: Samples) -> tuple[float, float]:
    return (samples[("classprobe_reports_ingested_total", ())],
            samples[("classprobe_measurements_ingested_total", ())])


def agents(samples: Samples, site: str) -> dict[str, float]:
    return {dict(labels)["state"]: v for (name, labels), v in samples.items()
            if name == "classprobe_agents" and dict(labels)["site"] == site}


def verdicts(samples: Samples, site: str) -> dict[str, str]:
    """profile -> the status whose series is 1 (each profile has exactly one)."""
    out: dict[str, str] = {}
    for (name, labels), v in samples.items():
        got = dict(labels)
        if name == "classprobe_verdicts" and got["site"] == site and v == 1:
            assert got["profile"] not in out, f"two statuses at 1 for {got['profile']}"
            out[got["profile"]] = got["status"]
    return out


def post(client: TestClient, who: Enrolled, body: bytes) -> None:
    resp = client.post("/api/v1/reports", headers=who.headers, content=body)
    assert resp.status_code == 200, resp.text


def test_counters_count_stored_reports_and_measurements_once(
        client: TestClient, enrolled: Enrolled) -> None:
    assert ingested(scrape(client)) == (0, 0)
    first = make_report(enrolled.agent_id, [latency_result(), failed_result()])  # 2 values
    second = make_report(enrolled.agent_id, [latency_result(), latency_result()])  # 4
    post(client, enrolled, batch_body(first, second, second))  # same id twice: stored once
    assert ingested(scrape(client)) == (2, 6)
    post(client, enrolled, batch_body(first, second))  # all duplicates
    assert ingested(scrape(client)) == (2, 6)
    post(client, enrolled, batch_body(make_report(enrolled.agent_id, [failed_result()])))
    assert ingested(scrape(client)) == (3, 6)


def test_rejected_batch_is_not_counted(client: TestClient, enrolled: Enrolled) -> None:
    resp = client.post("/api/v1/reports", headers=enrolled.headers, content=b"{}")
    assert resp.status_code == 422
    assert ingested(scrape(client)) == (0, 0)


def test_two_apps_in_one_process_keep_their_own_counts(
        client: TestClient, enrolled: Enrolled, tmp_path: Path) -> None:
    post(client, enrolled, batch_body(make_report(enrolled.agent_id)))
    other = TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path}/other.db")))
    assert ingested(scrape(client)) == (1, 2)
    assert ingested(scrape(other)) == (0, 0)


def _age(engine: Engine, agent_id: str, age: timedelta | None) -> None:
    with Session(engine) as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        agent.last_seen = None if age is None else utcnow() - age
        session.add(agent)
        session.commit()


def test_agents_per_site_and_state(client: TestClient, engine: Engine, site_token: str) -> None:
    live = [enrol(client, site_token, room) for room in ("Room 12", "Room 12", "Room 7")]
    at_risk, silent, never, revoked = (enrol(client, site_token) for _ in range(4))
    _age(engine, at_risk.agent_id, timedelta(hours=2))
    _age(engine, silent.agent_id, timedelta(days=3))
    _age(engine, never.agent_id, None)
    with Session(engine) as session:
        create_site(session, "St Mary's Primary")
        revoke_agent(session, revoked.agent_id)
    samples = scrape(client)
    assert len(live) == 3
    assert agents(samples, SITE) == {"live": 3, "at-risk": 1, "silent": 2, "revoked": 1}
    assert agents(samples, "St Mary's Primary") == {
        "live": 0, "at-risk": 0, "silent": 0, "revoked": 0}


def test_verdicts_are_a_state_set_per_site_and_profile(
        client: TestClient, engine: Engine, enrolled: Enrolled,
        admin_headers: dict[str, str]) -> None:
    with Session(engine) as session:
        profiles = sorted(profile_registry(session))
    samples = scrape(client)
    assert verdicts(samples, SITE) == dict.fromkeys(profiles, "unknown")
    series = [labels for name, labels in samples if name == "classprobe_verdicts"]
    assert len(series) == len(profiles) * len(VERDICT_STATUSES)

    set_always_in_lesson(engine)
    slow = [make_report(enrolled.agent_id, [latency_result(p50=300.0)]) for _ in range(5)]
    post(client, enrolled, batch_body(*slow))
    api = client.get(f"/api/v1/sites/{SITE}/readiness", headers=admin_headers).json()["profiles"]
    fresh = TestClient(client.app)  # same app: the snapshot is still cached (60 s)
    assert verdicts(scrape(fresh), SITE) == dict.fromkeys(profiles, "unknown")
    state = StateCollector(engine)  # a new cache sees the data
    expected = {p["profile"]: p["status"] for p in api}
    assert expected["microsoft-teams-media"] == "fail"  # RTT 300 ms in lessons
    assert {(site, profile): status for site, profile, status in state.snapshot().verdicts} \
        == {(SITE, profile): status for profile, status in expected.items()}


def test_snapshot_is_cached_for_the_ttl(client: TestClient, engine: Engine,
                                        site_token: str) -> None:
    clock = [100.0]
    state = StateCollector(engine, ttl_s=60.0, clock=lambda: clock[0])

    def live() -> int:
        return dict(((s, st), n) for s, st, n in state.snapshot().agents)[(SITE, "live")]

    enrol(client, site_token)
    assert live() == 1
    enrol(client, site_token)
    clock[0] = 159.9
    assert live() == 1
    clock[0] = 160.0
    assert live() == 2


def test_stored_counts_takes_each_accepted_report_once() -> None:
    from agent.wire import IngestResponse, ReportBatch

    a = make_report("x", [latency_result()])
    b = make_report("x", [latency_result(), latency_result()])
    batch = ReportBatch(reports=[a, b, b])
    assert stored_counts(batch, IngestResponse(accepted=[str(b.report_id)],
                                               duplicates=[str(a.report_id)])) == (1, 4)
    assert stored_counts(batch, IngestResponse(accepted=[], duplicates=[])) == (0, 0)


@pytest.fixture
def token_client(tmp_path: Path) -> TestClient:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/t.db",
                        metrics_token=SecretStr("s3cret-metrics"))
    return TestClient(create_app(settings))


def test_token_is_required_when_set(token_client: TestClient) -> None:
    missing = token_client.get("/metrics")
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "Bearer")
    assert "Authorization: Bearer <metrics token>" in missing.json()["detail"]
    wrong = token_client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert (wrong.status_code, wrong.json()["detail"]) == (
        401, "metrics token not recognised (CLASSPROBE_METRICS_TOKEN)")
    basic = token_client.get("/metrics", headers={"Authorization": "Basic s3cret-metrics"})
    assert basic.status_code == 401
    assert ingested(scrape(token_client, Authorization="Bearer s3cret-metrics")) == (0, 0)


def test_token_from_the_environment_and_empty_means_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSPROBE_METRICS_TOKEN", "from-env")
    settings = Settings(database_url=f"sqlite:///{tmp_path}/a.db")
    assert settings.metrics_token is not None
    assert TestClient(create_app(settings)).get("/metrics").status_code == 401
    monkeypatch.setenv("CLASSPROBE_METRICS_TOKEN", "")
    open_app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/b.db"))
    assert ingested(scrape(TestClient(open_app))) == (0, 0)


def test_a_site_that_cannot_be_judged_still_scrapes(client: TestClient, engine: Engine,
                                                    enrolled: Enrolled) -> None:
    from collector.models import StoredProfile

    with Session(engine) as session:
        session.add(StoredProfile(id="broken", version="1", document="not = [toml"))
        session.commit()
    samples = scrape(client)
    assert verdicts(samples, SITE) == {}
    assert agents(samples, SITE)["live"] == 1
    assert ingested(samples) == (0, 0)

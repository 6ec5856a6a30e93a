"""Per-agent rate limits on POST /api/v1/reports and GET /api/v1/agent/control."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.models import Report
from collector.ratelimit import TokenBuckets
from tests.collector.conftest import count
from tests.security.world import World, bearer, close_world, make_world, report_body

RATE = 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_one_per_interval() -> None:
    clock = FakeClock()
    buckets = TokenBuckets(60, clock)  # one a second, bursts of 60
    assert [buckets.take("a") for _ in range(60)] == [0.0] * 60
    assert buckets.take("a") == pytest.approx(1.0)
    assert buckets.take("b") == 0.0  # each key has its own bucket
    clock.now += 0.5
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(1.0)
    clock.now += 3600
    assert [buckets.take("a") for _ in range(61)][-2:] == [0.0, pytest.approx(1.0)]


def test_bucket_refuses_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="rate_per_minute 0 must be positive"):
        TokenBuckets(0)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path, agent_rate_per_minute=RATE)
    yield w
    close_world(w)


def test_reports_over_the_limit_get_429_with_retry_after(world: World) -> None:
    agent = bearer(world.agent_a.credential)
    # make_world already uploaded one report of each agent
    for _ in range(RATE - 1):
        resp = world.client.post("/api/v1/reports", content=report_body(world.agent_a),
                                 headers=agent)
        assert resp.status_code == 200, resp.text
    stored = count(world.app.state.engine, Report)
    refused = world.client.post("/api/v1/reports", content=report_body(world.agent_a),
                                headers=agent)
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert 15 <= wait <= 20  # 60 s / 3 per minute, less what refilled since the burst
    assert refused.json()["detail"] == (
        f"agent {world.agent_a.agent_id} is over its limit of 3 requests per minute to "
        "POST /api/v1/reports (agent_rate_per_minute, per collector process); "
        f"retry after {wait} s")
    assert count(world.app.state.engine, Report) == stored
    # another agent, and the same agent's control poll, are not held up
    other = world.client.post("/api/v1/reports", content=report_body(world.agent_b),
                              headers=bearer(world.agent_b.credential))
    assert other.status_code == 200
    assert world.client.get("/api/v1/agent/control", headers=agent).status_code == 200


def test_control_polls_over_the_limit_get_429(world: World) -> None:
    agent = bearer(world.agent_a.credential)
    statuses = [world.client.get("/api/v1/agent/control", headers=agent).status_code
                for _ in range(RATE + 1)]
    assert statuses == [200] * RATE + [429]
    refused = world.client.get("/api/v1/agent/control", headers=agent)
    assert 15 <= int(refused.headers["Retry-After"]) <= 20
    assert "GET /api/v1/agent/control" in refused.json()["detail"]


def test_a_bad_credential_spends_nothing(world: World) -> None:
    """Authentication comes first: unknown credentials get 401, never 429."""
    statuses = {world.client.get("/api/v1/agent/control", headers=bearer("nope")).status_code
                for _ in range(RATE + 2)}
    assert statuses == {401}


def test_default_limit_is_generous() -> None:
    from collector.settings import Settings

    assert Settings().agent_rate_per_minute == 120

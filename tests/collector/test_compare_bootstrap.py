"""The fast bootstrap draws equal (or, for single samples, match in distribution) the
naive ones: resample the groups, concatenate, take the statistic."""

from __future__ import annotations

import random

import pytest

from collector.services import compare_bootstrap
from collector.services.compare_bootstrap import Resampler
from collector.services.readiness_samples import percentile, statistic


def naive(groups: list[list[float]], name: str, rng: random.Random) -> float:
    return statistic(name, [v for g in rng.choices(groups, k=len(groups)) for v in g])


def skewed_groups(rng: random.Random, k: int, per: int) -> list[list[float]]:
    """Latency-like: each device its own level, right-skewed samples, some ties."""
    return [[round(level + rng.expovariate(1 / 8), 1) for _ in range(rng.randint(1, per))]
            for level in (rng.uniform(20, 60) for _ in range(k))]


@pytest.mark.parametrize("name", ["p50", "p95", "p10", "min", "max", "mean"])
@pytest.mark.parametrize("bisect_cost", [0, 10**9])  # always bisect / always scan
def test_group_draws_equal_the_naive_resample(name: str, bisect_cost: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare_bootstrap, "BISECT_COST", bisect_cost)
    groups = skewed_groups(random.Random(1), 12, 15)
    resampler = Resampler(groups, name)
    assert resampler.observed == statistic(name, [v for g in groups for v in g])
    fast_rng, naive_rng = random.Random(9), random.Random(9)
    # both draw the groups with the same rng.choices call, so the same groups each time
    for _ in range(200):
        assert resampler.draw(fast_rng) == pytest.approx(naive(groups, name, naive_rng),
                                                         rel=1e-12)


@pytest.mark.parametrize("name", ["p50", "p95", "min", "max", "mean"])
def test_single_sample_draws_match_the_naive_distribution(name: str) -> None:
    rng = random.Random(2)
    values = [[round(30 + rng.expovariate(1 / 8), 1)] for _ in range(80)]
    resampler = Resampler(values, name)
    fast = [resampler.draw(rng) for _ in range(4000)]
    slow = [naive(values, name, rng) for _ in range(4000)]
    spread = percentile(slow, 97.5) - percentile(slow, 2.5)
    for q in (2.5, 25, 50, 75, 97.5):
        assert percentile(fast, q) == pytest.approx(percentile(slow, q), abs=0.08 * spread)


def test_every_draw_is_a_value_of_the_data_for_order_statistics() -> None:
    values = [[v] for v in (5.0, 1.0, 3.0, 3.0, 9.0)]
    resampler = Resampler(values, "max")
    rng = random.Random(3)
    assert {resampler.draw(rng) for _ in range(500)} <= {1.0, 3.0, 5.0, 9.0}
    assert Resampler([[4.0]], "p95").draw(rng) == 4.0


def test_refusals() -> None:
    with pytest.raises(ValueError, match="none of them empty"):
        Resampler([[1.0], []], "p50")
    with pytest.raises(ValueError, match="unknown statistic 'median'"):
        Resampler([[1.0]], "median")

import pytest

from agent.stats import jitter, percentile, summarise


def test_nearest_rank_percentiles_of_five():
    samples = [12.0, 10.0, 50.0, 11.0, 13.0]
    assert percentile(samples, 50) == 12.0
    assert percentile(samples, 95) == 50.0
    assert percentile(samples, 0) == 10.0
    assert percentile(samples, 20) == 10.0  # ceil(0.2 * 5) = rank 1
    assert percentile(samples, 21) == 11.0  # ceil(1.05) = rank 2
    assert percentile(samples, 100) == 50.0


def test_percentile_of_four_is_the_lower_median_and_a_real_sample():
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 75) == 3.0


def test_p95_of_twenty_is_the_nineteenth():
    assert percentile([float(i) for i in range(1, 21)], 95) == 19.0


def test_percentile_rejects_empty_and_out_of_range():
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="101"):
        percentile([1.0], 101)


def test_jitter_is_mean_absolute_consecutive_difference():
    # |12-10| + |11-12| + |15-11| = 2 + 1 + 4 = 7, over 3 pairs
    assert jitter([10.0, 12.0, 11.0, 15.0]) == pytest.approx(7 / 3)
    assert jitter([5.0, 5.0]) == 0.0
    # order matters: the same values sorted have less jitter
    assert jitter([10.0, 11.0, 12.0, 15.0]) == pytest.approx(5 / 3)


def test_jitter_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2"):
        jitter([1.0])


def test_summarise():
    s = summarise([3.0, 1.0, 2.0])
    assert (s.n, s.min, s.p50, s.p95, s.max) == (3, 1.0, 2.0, 3.0, 3.0)

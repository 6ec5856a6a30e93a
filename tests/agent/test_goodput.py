import pytest

from agent.probes.goodput import (
    Completion,
    confirmed_rate,
    mbps,
    min_window,
    next_chunk,
    running_mbps,
    settled,
    slope,
    warmup_end,
    window,
)

KB = 1000


def timeline_of(rates_per_100ms: list[int]) -> list[tuple[float, int]]:
    out, total = [(0.0, 0)], 0
    for i, rate in enumerate(rates_per_100ms, start=1):
        total += rate
        out.append((i / 10, total))
    return out


RAMP = timeline_of([1 * KB, 2 * KB, 4 * KB, 8 * KB, 16 * KB, 32 * KB, 64 * KB] + [100 * KB] * 23)


def test_mbps_is_decimal_megabits():
    assert mbps(1_250_000, 1.0) == 10.0
    assert mbps(125_000_000, 8.0) == 125.0
    with pytest.raises(ValueError, match="positive"):
        mbps(1, 0)


def test_warmup_lasts_until_the_ramp_is_over():
    # at t=1.6 s the last 0.5 s (500 kB) is within 10 % of the 0.5 s before (464 kB)
    assert warmup_end(RAMP) == pytest.approx(1.6)


def test_warmup_is_at_least_the_minimum_on_a_flat_line():
    flat = timeline_of([100 * KB] * 30)
    assert warmup_end(flat) == pytest.approx(1.0)
    assert warmup_end(flat, min_s=2.0) == pytest.approx(2.0)


def test_no_warmup_end_while_still_ramping():
    assert warmup_end(timeline_of([KB * 2**i for i in range(15)])) is None


def test_window_and_goodput_after_warmup():
    w = window(RAMP, 1.6)
    assert w is not None
    assert (w.start_s, w.end_s, w.bytes) == (1.6, 3.0, 14 * 100 * KB)
    assert w.mbps == pytest.approx(1_400_000 * 8 / 1.4 / 1e6)  # 8.0 Mbps
    assert w.average_mbps == pytest.approx(8.0)
    assert running_mbps(RAMP, 1.6) == pytest.approx(8.0)
    assert window(RAMP, 3.0) is None  # a single sample is no window
    assert window(RAMP, 5.0) is None


def test_slope_is_least_squares():
    assert slope([(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) == pytest.approx(2.0)
    assert slope([(0.0, 0.0), (1.0, 1.0), (2.0, 0.0), (3.0, 1.0)]) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="at least 2"):
        slope([(0.0, 1.0)])
    with pytest.raises(ValueError, match="different times"):
        slope([(1.0, 1.0), (1.0, 2.0)])


def test_goodput_is_the_fit_not_the_end_points():
    # 100 kB per 100 ms, but a retransmission hole holds 60 kB back from t=2.0 to t=2.1
    # (a burst of 160 kB then): a window starting inside the hole reads 60 kB too many
    # from its end points; the fit moves by a fraction of that.
    rates = [100 * KB] * 30
    rates[19], rates[20] = 40 * KB, 160 * KB
    line = timeline_of(rates)
    w = window(line, 2.0)
    assert w is not None
    assert w.average_mbps == pytest.approx(1_060_000 * 8 / 1.0 / 1e6)  # +6 %
    assert abs(w.mbps / 8.0 - 1) < abs(w.average_mbps / 8.0 - 1) / 2


def test_min_window_grows_with_the_loaded_rtt():
    assert min_window(2.5, []) == 2.5
    assert min_window(2.5, [10.0, 12.0, 30.0]) == 2.5  # 50 × 12 ms = 0.6 s
    assert min_window(2.5, [80.0, 90.0, 100.0, 400.0]) == pytest.approx(5.0)  # 50 × 100 ms


def test_settled():
    steady = [(t / 10, 40.0 + (t % 2) * 0.5) for t in range(20, 31)]
    assert settled(steady, span_s=1.0, tolerance_pct=2.0) is True
    assert settled(steady[-5:], span_s=1.0) is False  # not a whole second of history
    drifting = [(t / 10, 40.0 + t) for t in range(20, 31)]
    assert settled(drifting, span_s=1.0, tolerance_pct=2.0) is False
    assert settled([], span_s=1.0) is False


def test_confirmed_rate_sums_stream_curves_over_their_common_window():
    a = [Completion(0.5, 100), Completion(1.0, 250_000), Completion(2.0, 250_000),
         Completion(3.0, 250_000)]
    b = [Completion(1.2, 500_000), Completion(2.2, 500_000), Completion(3.2, 500_000)]
    rate = confirmed_rate([a, b], start_s=1.0)
    assert not isinstance(rate, str)
    total_mbps, nbytes, span = rate
    # common window 1.2 .. 3.0 s: a delivers 250 kB/s (450 kB), b 500 kB/s (900 kB)
    assert total_mbps == pytest.approx(6.0)
    assert nbytes == 1_350_000
    assert span == pytest.approx(1.8)


def test_confirmed_rate_is_not_fooled_by_a_stream_starved_early():
    # 1 MB/s shared: a gets 750 kB/s and b 250 kB/s for 2 s, then 500 kB/s each.
    # b's first completion comes only at 2.0 s. Summing each stream's own rate over its
    # own span read 0.625 + 0.5 = 1.125 MB/s (+12.5 %); the common window reads 1 MB/s.
    a = [Completion(t, 375_000) for t in (0.5, 1.0, 1.5, 2.0, 2.75, 3.5)]
    b = [Completion(t, 500_000) for t in (2.0, 3.0, 4.0)]
    rate = confirmed_rate([a, b], start_s=0.4)
    assert not isinstance(rate, str)
    assert rate[0] == pytest.approx(8.0)
    assert (rate[1], rate[2]) == (1_500_000, pytest.approx(1.5))


def test_a_request_start_lets_the_curve_cover_its_first_request():
    # b began its first request at 0.1 s: its curve reaches back before its first completion
    a = [Completion(t, 100_000, began=t - 0.1) for t in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    b = [Completion(0.6, 500_000, began=0.1)]
    rate = confirmed_rate([a, b], start_s=0.1)
    assert not isinstance(rate, str)
    assert rate[0] == pytest.approx(16.0)  # 1 MB/s + 1 MB/s
    assert (rate[1], rate[2]) == (1_000_000, pytest.approx(0.5))


def test_confirmed_rate_says_why_there_is_no_window():
    rate = confirmed_rate([[Completion(1.5, 10), Completion(2.5, 10)], [Completion(2.0, 10)]],
                          start_s=1.0)
    assert rate == "stream 2 completed 1 request(s): not enough to know when its bytes arrived"
    apart = confirmed_rate([[Completion(1.0, 10), Completion(1.5, 10)],
                            [Completion(2.0, 10), Completion(2.5, 10)]], start_s=1.0)
    assert apart == ("the streams' confirmed bytes cover no common time after the 1.0 s "
                     "warm-up (earliest last completion at 1.50 s)")
    assert confirmed_rate([], 1.0) == "no stream ran"


def test_next_chunk_targets_half_a_second():
    assert next_chunk(256 * 1024, 0.1) == 1024 * 1024  # 5x wanted, growth capped at 4x
    assert next_chunk(1024 * 1024, 1.0) == 512 * 1024
    assert next_chunk(64 * 1024, 10.0) == 64 * 1024  # floor
    assert next_chunk(64 * 1024 * 1024, 0.01) == 64 * 1024 * 1024  # ceiling
    assert next_chunk(100_000, 0.0) == 400_000

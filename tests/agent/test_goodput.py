import pytest

from agent.probes.goodput import (
    Completion,
    confirmed_rate,
    mbps,
    next_chunk,
    running_mbps,
    settled,
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
    assert running_mbps(RAMP, 1.6) == pytest.approx(8.0)
    assert window(RAMP, 3.0) is None  # a single sample is no window
    assert window(RAMP, 5.0) is None


def test_settled():
    steady = [(t / 10, 40.0 + (t % 2) * 0.5) for t in range(20, 31)]
    assert settled(steady, span_s=1.0, tolerance_pct=2.0) is True
    assert settled(steady[-5:], span_s=1.0) is False  # not a whole second of history
    drifting = [(t / 10, 40.0 + t) for t in range(20, 31)]
    assert settled(drifting, span_s=1.0, tolerance_pct=2.0) is False
    assert settled([], span_s=1.0) is False


def test_confirmed_rate_sums_per_stream_rates_between_completions():
    a = [Completion(0.5, 100), Completion(1.0, 250_000), Completion(2.0, 250_000),
         Completion(3.0, 250_000)]
    b = [Completion(1.2, 500_000), Completion(2.2, 500_000), Completion(3.2, 500_000)]
    rate = confirmed_rate([a, b], start_s=1.0)
    assert not isinstance(rate, str)
    total_mbps, nbytes, span = rate
    # a: 500 kB over 2.0 s = 2 Mbps; b: 1 MB over 2.0 s = 4 Mbps
    assert total_mbps == pytest.approx(6.0)
    assert nbytes == 1_500_000
    assert span == pytest.approx(2.0)


def test_confirmed_rate_needs_two_completions_per_stream():
    rate = confirmed_rate([[Completion(1.5, 10), Completion(2.5, 10)], [Completion(2.0, 10)]],
                          start_s=1.0)
    assert rate == "stream 2 completed 1 request(s) after the warm-up; at least 2 are needed"
    assert confirmed_rate([], 1.0) == "no stream ran"


def test_next_chunk_targets_half_a_second():
    assert next_chunk(256 * 1024, 0.1) == 1024 * 1024  # 5x wanted, growth capped at 4x
    assert next_chunk(1024 * 1024, 1.0) == 512 * 1024
    assert next_chunk(64 * 1024, 10.0) == 64 * 1024  # floor
    assert next_chunk(64 * 1024 * 1024, 0.01) == 64 * 1024 * 1024  # ceiling
    assert next_chunk(100_000, 0.0) == 400_000

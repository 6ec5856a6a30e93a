"""The TUN wire adds the delay, jitter and loss it is told to, for every protocol."""

from __future__ import annotations

import shutil
import statistics
from collections.abc import Callable

import pytest

from tests.lab import measure
from tests.lab.certs import CertSet
from tests.lab.netlab import Lab
from tests.lab.plugin import Endpoints, start_endpoints
from tests.lab.truth import (
    WIRE_RTT_TOLERANCE_MS,
    loss_sigma_pct,
    round_trip_loss_pct,
    rtt_jitter_ms,
)

pytestmark = pytest.mark.lab
needs_ping = pytest.mark.skipif(shutil.which("ping") is None,
                                reason="needs iputils ping (Debian package iputils-ping)")


def connect_median(lab: Lab, port: int) -> float:
    return statistics.median(lab.call("cls", measure.tcp_connect_ms, lab.far_addr, port, 25))


def assert_added(measured: float, baseline: float, delay_ms: float, method: str) -> None:
    low, high = WIRE_RTT_TOLERANCE_MS[method]
    error = measured - baseline - 2 * delay_ms
    assert low <= error <= high, (
        f"{method}: {measured:.3f} ms - baseline {baseline:.3f} ms - 2×{delay_ms} ms "
        f"= {error:+.3f} ms, outside [{low}, {high}]")


@pytest.mark.parametrize("delay_ms", [5, 20], ids=["rtt10ms", "rtt40ms"])
def test_tcp_connect_recovers_added_rtt(lab: Lab, lab_endpoints: Endpoints,
                                        delay_ms: float) -> None:
    baseline = connect_median(lab, lab_endpoints.http_port)
    lab.set_path(delay_ms)
    assert_added(connect_median(lab, lab_endpoints.http_port), baseline, delay_ms, "tcp_connect")


@needs_ping
@pytest.mark.parametrize("delay_ms", [0, 5, 20], ids=["overhead", "rtt10ms", "rtt40ms"])
def test_ping_recovers_added_rtt(lab: Lab, delay_ms: float) -> None:
    baseline = measure.ping(lab, "cls", lab.far_addr, 50, 0.01).median_ms
    lab.set_path(delay_ms)
    assert_added(measure.ping(lab, "cls", lab.far_addr, 100, 0.01).median_ms, baseline,
                 delay_ms, "icmp")


@needs_ping
def test_seeded_loss_matches_binomial_and_the_wire_counters(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab()  # a private lab: no other packet crosses the wire, so counts are exact
    count, loss = 1000, 5.0
    lab.set_path(0, loss_pct=loss, seed=5)
    result = measure.ping(lab, "cls", lab.far_addr, count, 0.002)
    stats = lab.wire_stats()
    expected = round_trip_loss_pct(loss)
    sigma = loss_sigma_pct(expected, count)
    assert abs(result.loss_pct - expected) <= 3 * sigma, (result.loss_pct, expected, sigma)
    assert stats["a_to_b"]["received"] == count
    assert result.received == stats["b_to_a"]["sent"]
    assert count - result.received == stats["a_to_b"]["dropped"] + stats["b_to_a"]["dropped"]


def test_same_seed_drops_the_same_datagrams(make_lab: Callable[..., Lab],
                                            lab_certs: CertSet) -> None:
    lab = make_lab()  # a private lab: the same packets cross the wire in every run
    lab_endpoints = start_endpoints(lab, lab_certs)
    runs = []
    for seed in (9, 9, 10):
        lab.set_path(0, loss_pct=10, seed=seed)
        echo = lab.call("cls", measure.udp_echo, lab.far_addr, lab_endpoints.udp_echo_port,
                        300, 0.001, 0.5)
        runs.append(echo.arrivals)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert 300 * 0.7 < len(runs[0]) < 300 * 0.9


@needs_ping
def test_jitter_spreads_rtt_as_documented(lab: Lab) -> None:
    delay, jitter = 20, 5
    lab.set_path(delay, jitter_ms=jitter, seed=3)
    rtts = measure.ping(lab, "cls", lab.far_addr, 150, 0.03).rtts_ms
    mean_abs_diff = statistics.fmean(abs(a - b) for a, b in zip(rtts, rtts[1:], strict=False))
    assert mean_abs_diff == pytest.approx(rtt_jitter_ms(jitter), abs=1.0)
    assert 2 * (delay - jitter) - 0.2 <= min(rtts)
    assert statistics.median(rtts) == pytest.approx(2 * delay, abs=1.0)


@pytest.mark.parametrize("reorder", [False, True], ids=["fifo", "reorder"])
def test_jitter_keeps_order_unless_asked(lab: Lab, lab_endpoints: Endpoints,
                                         reorder: bool) -> None:
    lab.set_path(10, jitter_ms=5, seed=2, reorder=reorder)
    echo = lab.call("cls", measure.udp_echo, lab.far_addr, lab_endpoints.udp_echo_port,
                    300, 0.0005, 0.3)
    assert echo.received == 300
    assert (echo.reordered > 0) is reorder

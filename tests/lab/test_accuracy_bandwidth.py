"""``classprobe probe bandwidth`` against tbf-shaped links whose true goodput is known.

The probe runs as a user would (``python -m classprobe.cli probe bandwidth --collector URL
--json`` in the classroom namespace) against the real collector's ``/speed/*`` endpoints
on the far side. The gateway's tbf sets the bottleneck in both directions.

Truth (``tests.lab.truth.tcp_goodput_mbps``): every full TCP segment carries 1448 payload
bytes (1500 MTU − 20 IP − 20 TCP − 12 timestamps) and costs tbf 1514 bytes (+14 Ethernet
header), so goodput = rate × 1448/1514. That is the whole overhead budget: the HTTP
headers (~200 B per request of ≥ 64 KiB, < 0.3 %) are the only other bytes, and they
fall on the probe's side of the tolerance, not into a factor.

100 Mbit/s holds up on 2 cores (measured within ±0.1 % in both directions), so it is in
the CI set.
"""

from __future__ import annotations

import pytest

from tests.lab import probe_runner as pr
from tests.lab.netlab import TBF_LATENCY_MS, Lab, burst_bytes
from tests.lab.plugin import Collector, Endpoints
from tests.lab.truth import tcp_goodput_mbps

pytestmark = pytest.mark.lab

GOODPUT_REL_TOLERANCE = 0.05
"""|measured / truth − 1| allowed for ``download_mbps`` and ``upload_mbps`` (issue 3: 5 %).

Measured on the 2-core lab VM (``benchmarks/accuracy.py`` and repeated runs): 5 Mbit/s
−0.6…+2.8 % (download) and −0.6…+1.2 % (upload), 20 Mbit/s within ±0.8 %, 100 Mbit/s within
±0.1 %; through the wire at 40 ms RTT within ±1.1 % (5 and 20) and +0.6 % (100). What is
left at 5 Mbit/s is TCP's own burstiness at the receiver: a retransmission that fills a
hole releases a whole window at once, and one 4-stream window of held-back data (rate ×
loaded RTT ≈ 40 kB) is ~2 % of a 2.75 s window. The aim (3 %) is met, but the largest
error seen (+2.8 %, 1 in ~12 runs at 5 Mbit/s) is too close to it to assert 3 % in CI.
"""
BUFFERBLOAT_MIN_MS = 5.0
"""Under saturation the tbf queue must show: loaded RTT ≥ idle + 5 ms (idle is 0.03–0.3 ms).

How full the queue gets depends on the congestion control, not only on tbf's 50 ms
limit: the lab runs BBR, which paces at the bottleneck rate and keeps a standing queue of
about 10–17 ms at 100 Mbit/s and 40–65 ms at 5–20 Mbit/s (measured); a loss-based one
would fill it to the limit. 5 ms is far above idle and below BBR's queue at every rate."""
SCHEDULING_SLACK_MS = 10.0
"""Wake-up and accept() delays of Python client and server on a busy 2-core VM."""


def bandwidth(lab: Lab, collector: Collector, *args: str) -> dict[str, pr.Result]:
    results = pr.cli(lab, "bandwidth", "--collector", collector.url, *args, timeout=90)
    assert [r["probe"] for r in results] == ["bandwidth", "bandwidth"], results
    return {"download": results[0], "upload": results[1]}


def idle_connect_ms(lab: Lab, collector: Collector) -> float:
    """p50 TCP connect time to the collector on the idle, unshaped path."""
    [result, *_] = pr.cli(lab, "latency", collector.url.removeprefix("http://"), "--count",
                          "10", "--no-icmp")
    p50 = pr.by_metric(result)[("tcp_connect_ms", "p50")][0]
    assert isinstance(p50, float)
    return p50


def queue_bound_ms(rate_mbit: float) -> float:
    """Longest wait tbf allows: ``latency`` plus one full bucket drained at the rate."""
    return TBF_LATENCY_MS + burst_bytes(rate_mbit) * 8 / (rate_mbit * 1e3)


@pytest.mark.parametrize("rate_mbit", [5, 20, 100])
def test_goodput_each_direction_within_tolerance_of_the_truth(
        lab: Lab, lab_collector: Collector, rate_mbit: float) -> None:
    idle = idle_connect_ms(lab, lab_collector)
    lab.shape("both", rate_mbit)
    truth = tcp_goodput_mbps(rate_mbit)
    results = bandwidth(lab, lab_collector, "--seconds", "8", "--streams", "4")
    for direction, result in results.items():
        assert result["status"] == "ok", result["reason"]
        got = pr.by_metric(result)
        metric = f"{direction}_mbps"
        measured, method = got[(metric, "value")]
        assert measured / truth - 1 == pytest.approx(0, abs=GOODPUT_REL_TOLERANCE), \
            f"{direction} {measured} Mbit/s vs true {truth:.3f} ({method})"
        expected_method = "http_get_4_streams" if direction == "download" \
            else "http_post_4_streams_tcp_acked"
        assert method == expected_method
        assert got[("streams", "value")][0] == 4
        # bufferbloat: the tbf queue the transfer fills delays the probe's own connects
        loaded, loaded_method = got[("loaded_latency_ms", "p50")]
        assert loaded_method == "tcp_connect_during_transfer"
        assert idle + BUFFERBLOAT_MIN_MS <= loaded, f"idle {idle} ms, loaded {loaded} ms"
        assert loaded <= idle + queue_bound_ms(rate_mbit) + SCHEDULING_SLACK_MS
        if direction == "download":  # the probe never counts more than reached the NIC
            assert 0 < got[("nic_agreement_pct", "value")][0] <= 100.5


def test_any_https_url_pair_measures_the_same_truth(lab: Lab,
                                                   lab_endpoints: Endpoints) -> None:
    """``--url``/``--upload-url`` over HTTPS (the lab CA as ``--ca-bundle``): the upload is
    still counted by what the server's TCP acknowledged, through the TLS socket."""
    lab.shape("both", 20)
    base = lab_endpoints.https_url
    results = pr.cli(lab, "bandwidth", "--url", f"{base}/speed/download?bytes=500000000",
                     "--upload-url", f"{base}/speed/upload", "--ca-bundle",
                     str(lab_endpoints.ca_bundle), "--seconds", "6", timeout=90)
    for result, (metric, method) in zip(results, [("download_mbps", "http_get_4_streams"), (
            "upload_mbps", "http_post_4_streams_tcp_acked")], strict=True):
        assert result["status"] == "ok", result["reason"]
        measured, got_method = pr.by_metric(result)[(metric, "value")]
        assert got_method == method
        assert measured / tcp_goodput_mbps(20) - 1 == pytest.approx(
            0, abs=GOODPUT_REL_TOLERANCE), f"{metric} {measured}"


def test_time_cap_and_streams_are_honoured(lab: Lab, lab_collector: Collector) -> None:
    """``--seconds 3 --streams 2``: two streams, a window that ends at the cap.

    The warm-up is at least 1.5 s (``BandwidthOptions.warmup_min_s``), so the measuring
    window is at most 3 − 1.5 s plus one 0.1 s sample; the stable-stop needs 2.5 s of
    window, so it is the time cap that ends this transfer, and the result says so.
    """
    lab.shape("both", 20)
    results = bandwidth(lab, lab_collector, "--seconds", "3", "--streams", "2")
    for direction, result in results.items():
        assert result["status"] == "ok", result["reason"]
        got = pr.by_metric(result)
        assert got[("streams", "value")][0] == 2
        assert got[(f"{direction}_mbps", "value")][1].startswith(
            "http_get_2_streams" if direction == "download" else "http_post_2_streams")
        assert 1.0 <= got[("duration_s", "value")][0] <= 3 - 1.5 + 0.15
        assert "stopped: time cap 3 s reached" in result["reason"]
        measured = got[(f"{direction}_mbps", "value")][0]
        assert measured / tcp_goodput_mbps(20) - 1 == pytest.approx(
            0, abs=GOODPUT_REL_TOLERANCE)


def test_a_transfer_cut_too_short_is_failed_not_a_number(lab: Lab,
                                                         lab_collector: Collector) -> None:
    """A 1.2 s cap ends inside the warm-up: no trusted window, so no number at all."""
    lab.shape("both", 20)
    results = bandwidth(lab, lab_collector, "--seconds", "1.2", "--streams", "2")
    for result in results.values():
        assert result["status"] == "failed"
        assert result["reason"].startswith("transfer too short to be trusted: ")
        assert "measurements" not in result or result["measurements"] == []

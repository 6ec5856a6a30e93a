"""The bandwidth probe against the local stand-in.

The stand-in paces each connection at a known rate, so the truth is known. Real
accuracy against shaped links (tbf) is the lab's job; here: consistency and honesty.
"""

import sys

import pytest

from agent.config import AgentConfig
from agent.probes import bandwidth
from agent.probes.bandwidth import BandwidthOptions, measure_download, measure_upload
from agent.wire import ProbeResult, new_report, semantic_errors
from tests.agent.standin import StandInServer

PER_STREAM_BPS = 20e6


def values(result: ProbeResult) -> dict[str, float]:
    return {m.metric if m.stat == "value" else f"{m.metric}.{m.stat}": m.value  # type: ignore[misc]
            for m in result.measurements}


@pytest.fixture
def paced(server: StandInServer) -> StandInServer:
    server.state.rate_bps = PER_STREAM_BPS
    return server


OPTS = BandwidthOptions(seconds=5, streams=2)


def test_download_matches_the_paced_truth(paced: StandInServer):
    result = measure_download(paced.url + "/speed/download", OPTS)
    assert result.status == "ok", result.reason
    v = values(result)
    assert v["download_mbps"] == pytest.approx(2 * PER_STREAM_BPS / 1e6, rel=0.10)
    # the rate is the slope fitted over the window; on a paced link the window average agrees
    assert v["download_mbps"] == pytest.approx(v["bytes"] * 8 / v["duration_s"] / 1e6, rel=0.02)
    assert v["bytes"] <= paced.state.download_sent
    assert v["streams"] == 2
    assert v["duration_s"] >= 1.0
    assert 0 < v["loaded_latency_ms.p50"] <= v["loaded_latency_ms.max"]
    # Other processes share loopback on a test machine, so the NIC may count more than
    # the test; it can never count less (that would mean the probe over-counts).
    assert 0 < v["nic_agreement_pct"] <= 101
    methods = {m.metric: m.method for m in result.measurements}
    assert methods["download_mbps"] == "http_get_2_streams"
    assert methods["loaded_latency_ms"] == "tcp_connect_during_transfer"
    assert "warm-up" in (result.reason or "")
    assert semantic_errors(new_report("a", "0", [result])) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux's")
def test_upload_counts_what_the_servers_tcp_acknowledged(paced: StandInServer):
    result = measure_upload(paced.url + "/speed/upload", OPTS)
    assert result.status == "ok", result.reason
    v = values(result)
    assert v["upload_mbps"] == pytest.approx(2 * PER_STREAM_BPS / 1e6, rel=0.10)
    assert v["bytes"] <= paced.state.upload_received
    methods = {m.metric: m.method for m in result.measurements}
    assert methods["upload_mbps"] == "http_post_2_streams_tcp_acked"


def test_upload_counts_what_the_server_confirmed(paced: StandInServer):
    """Where the OS gives no acknowledged-byte count: the server's confirmations."""
    opts = BandwidthOptions(seconds=5, streams=2, tcp_acked=False)
    result = measure_upload(paced.url + "/speed/upload", opts)
    assert result.status == "ok", result.reason
    v = values(result)
    assert v["upload_mbps"] == pytest.approx(2 * PER_STREAM_BPS / 1e6, rel=0.10)
    assert v["bytes"] <= paced.state.upload_received
    methods = {m.metric: m.method for m in result.measurements}
    assert methods["upload_mbps"] == "http_post_2_streams_server_confirmed"


def test_too_short_a_transfer_is_failed_not_a_number(server: StandInServer):
    opts = BandwidthOptions(seconds=5, streams=1, max_bytes=300_000)
    result = measure_download(server.url + "/speed/download", opts)
    assert result.status == "failed"
    assert (result.reason or "").startswith("transfer too short to be trusted: ")
    assert "byte cap 300000 reached" in (result.reason or "")
    assert result.measurements == []


def test_unreachable_server_is_failed_with_the_error(closed_port: int):
    url = f"http://127.0.0.1:{closed_port}/speed/download"
    result = measure_download(url, BandwidthOptions(seconds=2, streams=2))
    assert result.status == "failed"
    assert result.reason == f"download from {url} failed: Connection refused"


def test_http_error_status_is_failed(server: StandInServer):
    url = server.url + "/nothing-here"
    result = measure_upload(url, BandwidthOptions(seconds=2, streams=1))
    assert result.status == "failed"
    assert result.reason == f"upload from {url} failed: HTTP 404 from {url}"


def test_any_large_url_can_be_the_download(paced: StandInServer):
    result = measure_download(paced.url + "/big", BandwidthOptions(seconds=4, streams=1),
                              sized=False)
    assert result.status == "ok", result.reason
    assert values(result)["download_mbps"] == pytest.approx(PER_STREAM_BPS / 1e6, rel=0.10)


def test_run_skips_without_a_collector():
    [result] = bandwidth.run(AgentConfig())
    assert (result.status, result.reason) == ("skipped",
                                              "no collector to test against (not enrolled)")
    [result] = bandwidth.run(AgentConfig(collector_url="http://x", bandwidth=False))
    assert result.reason == "bandwidth probe disabled in the configuration"

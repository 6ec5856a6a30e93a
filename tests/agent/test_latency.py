import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from agent.probes import latency
from agent.probes.latency import LatencyOptions, measure
from agent.probes.net import Target, parse_target
from agent.wire import ProbeResult, new_report, semantic_errors
from tests.agent.standin import StandInServer

NO_ICMP = LatencyOptions(samples=5, timeout_s=2.0, icmp=False)


@pytest.mark.parametrize(("raw", "expected"), [
    ("https://teams.microsoft.com", Target("https://teams.microsoft.com", "teams.microsoft.com",
                                           443, "https", "https://teams.microsoft.com/")),
    ("http://10.0.0.1:8080/speed/ping", Target("http://10.0.0.1:8080/speed/ping", "10.0.0.1",
                                               8080, "http", "http://10.0.0.1:8080/speed/ping")),
    ("meet.google.com", Target("meet.google.com", "meet.google.com", 443, None, None)),
    ("example.org:3478", Target("example.org:3478", "example.org", 3478, None, None)),
    ("[2001:db8::1]:80", Target("[2001:db8::1]:80", "2001:db8::1", 80, None, None)),
    ("2001:db8::1", Target("2001:db8::1", "2001:db8::1", 443, None, None)),
])
def test_parse_target(raw: str, expected: Target):
    assert parse_target(raw) == expected


@pytest.mark.parametrize(("raw", "message"), [
    ("ftp://x", "scheme 'ftp' is not http or https"),
    ("host:http", "port 'http' is not a number"),
    ("host:70000", "port 1-65535"),
    ("", "empty target"),
])
def test_parse_target_errors(raw: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_target(raw)


def by_metric(result: ProbeResult) -> dict[tuple[str, str], float | None]:
    return {(m.metric, m.stat): m.value for m in result.measurements}


def check_summary(result: ProbeResult, metric: str, method: str, n: int) -> None:
    items = [m for m in result.measurements if m.metric == metric]
    assert [m.stat for m in items] == ["min", "p50", "p95", "max"]
    assert {m.method for m in items} == {method}
    assert {m.samples for m in items} == {n}
    values = [m.value for m in items]
    assert values == sorted(values)  # type: ignore[type-var]
    assert all(v is not None and v > 0 for v in values)


def test_http_target_on_local_server(server: StandInServer):
    [result] = measure([server.url + "/speed/ping"], NO_ICMP)
    assert result.status == "ok"
    assert result.target == server.url + "/speed/ping"
    assert result.reason == "dns_ms not measured: 127.0.0.1 is an IP literal"
    check_summary(result, "tcp_connect_ms", "tcp_connect", 5)
    check_summary(result, "http_ttfb_ms", "httpx_trace_ttfb", 5)
    jitter = [m for m in result.measurements if m.metric == "jitter_ms"]
    assert len(jitter) == 1
    assert (jitter[0].method, jitter[0].samples, jitter[0].stat) == ("tcp_connect", 5, "value")
    assert not any(m.metric in ("dns_ms", "tls_handshake_ms") for m in result.measurements)
    assert semantic_errors(new_report("a", "0", [result])) == []


def test_host_port_target_measures_dns_and_tcp_only(server: StandInServer):
    [result] = measure([f"localhost:{server.port}"], NO_ICMP)
    assert result.status == "ok", result.reason
    check_summary(result, "dns_ms", "getaddrinfo", 5)
    check_summary(result, "tcp_connect_ms", "tcp_connect", 5)
    assert not any(m.metric == "http_ttfb_ms" for m in result.measurements)


def test_closed_port_is_failed_with_refused(closed_port: int):
    [result] = measure([f"127.0.0.1:{closed_port}"], NO_ICMP)
    assert result.status == "failed"
    assert result.reason == f"TCP connect to 127.0.0.1:{closed_port} failed: Connection refused"
    assert result.measurements == []


def test_dns_failure_is_failed_with_the_name(monkeypatch: pytest.MonkeyPatch):
    def no_such_name(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(latency.socket, "getaddrinfo", no_such_name)
    [result] = measure(["https://blocked.example"], NO_ICMP)
    assert result.status == "failed"
    assert result.reason == "DNS lookup of blocked.example failed: Name or service not known"


def test_bad_target_is_a_failed_result_not_a_crash(server: StandInServer):
    results = measure(["ftp://x", server.url + "/speed/ping"], NO_ICMP)
    assert [r.status for r in results] == ["failed", "ok"]
    assert results[0].reason == "target 'ftp://x': scheme 'ftp' is not http or https"


def test_https_with_trusted_ca_measures_tls(tls_server: tuple[str, Path]):
    url, bundle = tls_server
    opts = LatencyOptions(samples=3, timeout_s=2.0, icmp=False, ca_bundle=str(bundle))
    [result] = measure([url + "/speed/ping"], opts)
    assert result.status == "ok", result.reason
    check_summary(result, "tls_handshake_ms", "tls_handshake", 3)
    check_summary(result, "http_ttfb_ms", "httpx_trace_ttfb", 3)


def test_https_with_untrusted_cert_says_why_tls_was_not_measured(tls_server: tuple[str, Path]):
    url, _bundle = tls_server
    [result] = measure([url + "/speed/ping"], LatencyOptions(samples=2, timeout_s=2.0,
                                                              icmp=False))
    assert result.status == "ok"  # TCP was measured
    assert "tls_handshake_ms not measured: all 2 TLS handshakes failed: certificate verify " \
           "failed: " in (result.reason or "")
    assert "http_ttfb_ms not measured: all 3 HTTP requests failed" in (result.reason or "")
    assert {m.metric for m in result.measurements} == {"tcp_connect_ms", "jitter_ms"}


class CloseEachTime(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def closing_server() -> Iterator[str]:
    srv = HTTPServer(("127.0.0.1", 0), CloseEachTime)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def test_server_without_keep_alive_is_labelled(closing_server: str):
    [result] = measure([closing_server], LatencyOptions(samples=3, timeout_s=2.0, icmp=False))
    check_summary(result, "http_ttfb_ms", "httpx_trace_ttfb_new_connection", 3)
    assert "the server closes each connection" in (result.reason or "")


def test_icmp_result_per_host_once(server: StandInServer):
    results = measure([server.url + "/speed/ping", f"127.0.0.1:{server.port}"],
                      LatencyOptions(samples=2, timeout_s=1.0, icmp_interval_s=0))
    assert [(r.probe, r.target) for r in results] == [
        ("latency", server.url + "/speed/ping"), ("icmp", "127.0.0.1"),
        ("latency", f"127.0.0.1:{server.port}")]
    icmp = results[1]
    assert icmp.status in ("ok", "skipped")
    if icmp.status == "ok":
        assert by_metric(icmp)[("loss_pct", "value")] == 0.0
        check_summary(icmp, "icmp_rtt_ms", icmp.measurements[0].method, 2)

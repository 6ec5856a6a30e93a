import socket
from collections.abc import Callable

import pytest

from agent.probes.block_check import BlockOptions, check_block, classify_dns, is_sinkhole
from agent.probes.blockpage import Expectation
from agent.probes.pathnet import parse_path_target
from agent.wire import ProbeResult, new_report, semantic_errors
from tests.agent.path.conftest import (
    FIXTURES,
    CertAuthority,
    FakeResolver,
    HttpsFactory,
    Page,
    PageServer,
    RawServer,
    nxdomain,
)

FAST = BlockOptions(timeout_s=2.0)
NO_DNS = FakeResolver({})


def verdict(result: ProbeResult) -> tuple[str, float | None, str]:
    assert result.status == "ok", result.reason
    [m] = result.measurements
    assert m.metric == "blocked"
    assert semantic_errors(new_report("a", "0", [result])) == []
    return result.status, m.value, m.method


# ------------------------------------------------------------------------------- DNS


@pytest.mark.parametrize(("answer", "blocked", "method"), [
    (nxdomain(), True, "dns:nxdomain"),
    (socket.gaierror(socket.EAI_NODATA, "No address associated with hostname"), True,
     "dns:no_answer"),
    ([], True, "dns:no_answer"),
    (["0.0.0.0"], True, "dns:sinkhole=0.0.0.0"),
    (["127.0.0.2", "::1"], True, "dns:sinkhole=127.0.0.2"),
    (["10.77.1.1"], True, "dns:sinkhole=10.77.1.1"),  # configured below
    (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), None, "dns"),
    (TimeoutError("no answer"), None, "dns"),
    (["203.0.113.7"], None, None),
    (["0.0.0.0", "203.0.113.7"], None, None),  # a real address among them: go on
])
def test_classify_dns(answer: list[str] | BaseException, blocked: bool | None,
                      method: str | None):
    finding = classify_dns("quiz.test", answer, sinkholes={"10.77.1.1"}, timeout_s=1)
    if method is None:
        assert finding is None
    else:
        assert finding is not None
        assert (finding.blocked, finding.method) == (blocked, method)


def test_localhost_names_are_not_sinkholes():
    assert classify_dns("localhost", ["127.0.0.1"]) is None
    assert classify_dns("app.localhost", ["::1"]) is None


def test_is_sinkhole():
    assert [is_sinkhole(a) for a in ("0.0.0.0", "0.1.2.3", "127.9.9.9", "::", "::1",
                                     "10.0.0.1", "2001:db8::1")] == \
        [True, True, True, True, True, False, False]


def test_nxdomain_through_the_injected_resolver():
    resolver = FakeResolver({"blocked.test": nxdomain()})
    result = check_block(parse_path_target("https://blocked.test/"), FAST, resolver)
    assert verdict(result) == ("ok", 1.0, "dns:nxdomain")
    assert result.reason == "blocked.test: the resolver says the name does not exist " \
                            "(Name or service not known)"
    assert resolver.asked == ["blocked.test"]


def test_resolver_trouble_is_failed_not_blocked():
    resolver = FakeResolver({"quiz.test": socket.gaierror(socket.EAI_AGAIN, "Temporary "
                                                         "failure in name resolution")})
    result = check_block(parse_path_target("http://quiz.test/"), FAST, resolver)
    assert result.status == "failed" and result.measurements == []
    assert result.reason == "DNS lookup of quiz.test failed: Temporary failure in name " \
                            "resolution (resolver trouble or a filter dropping the query: " \
                            "cannot tell)"


# ------------------------------------------------------------------------------ HTTP


def test_clean_http_page(http_server: PageServer):
    result = check_block(parse_path_target(f"http://127.0.0.1:{http_server.port}"), FAST,
                         NO_DNS)
    assert verdict(result) == ("ok", 0.0, "clean:http")
    assert result.reason == f"http://127.0.0.1:{http_server.port}/: HTTP 200, " \
                            "no block-page signs"
    assert http_server.requests == [("/", f"127.0.0.1:{http_server.port}")]


def test_a_service_name_answered_with_loopback_is_a_sinkhole(http_server: PageServer):
    # A public name never lives on 127.0.0.0/8: that answer is a sinkhole even when
    # something happens to listen locally (so tests use IP literals for HTTP checks).
    resolver = FakeResolver({"quiz.test": ["127.0.0.1"]})
    result = check_block(parse_path_target(f"http://quiz.test:{http_server.port}/"), FAST,
                         resolver)
    assert verdict(result) == ("ok", 1.0, "dns:sinkhole=127.0.0.1")
    assert http_server.requests == []


PageFactory = Callable[[dict[str, Page]], PageServer]


def test_block_page_is_named(page_server: PageFactory):
    body = (FIXTURES / "pages" / "filter-school-generic.html").read_bytes()
    srv = page_server({"/": Page(200, body)})
    result = check_block(parse_path_target(f"http://127.0.0.1:{srv.port}/"), FAST, NO_DNS)
    assert verdict(result) == ("ok", 1.0, "block_page:title=access restricted")
    assert result.reason == (f"HTTP 200 from http://127.0.0.1:{srv.port}/: short page (150 "
                             "characters), title 'Access restricted' contains "
                             "'access restricted'")


def test_redirect_to_a_filter_address_and_451(page_server: PageFactory):
    srv = page_server({"/": Page(302, b"", {"Location": "http://10.0.0.1:8015/page?u=quiz"}),
                       "/legal": Page(451, b"unavailable")})
    redirect = check_block(parse_path_target(f"http://127.0.0.1:{srv.port}/"), FAST, NO_DNS)
    # an address literal target redirected to another address is not suspicious by itself
    assert verdict(redirect) == ("ok", 0.0, "clean:http")
    named = BlockOptions(timeout_s=2, sinkholes=frozenset({"10.0.0.1"}))
    redirect = check_block(parse_path_target(f"http://127.0.0.1:{srv.port}/"), named, NO_DNS)
    assert verdict(redirect) == ("ok", 1.0, "block_page:redirect=10.0.0.1")
    legal = check_block(parse_path_target(f"http://127.0.0.1:{srv.port}/legal"), FAST,
                        NO_DNS)
    assert verdict(legal) == ("ok", 1.0, "block_page:status=451")


def test_expectations(http_server: PageServer):
    target = parse_path_target(f"http://127.0.0.1:{http_server.port}/")
    met = BlockOptions(timeout_s=2, expect=Expectation(200, "Welcome to the quiz"))
    assert verdict(check_block(target, met, NO_DNS)) == ("ok", 0.0, "clean:http")
    unmet = BlockOptions(timeout_s=2, expect=Expectation(text="Kahoot!"))
    assert verdict(check_block(target, unmet, NO_DNS)) == \
        ("ok", 1.0, "block_page:expect_text_missing")


def test_clean_https_page_with_an_interception_cert_is_not_a_block(
        https_server: HttpsFactory, filter_ca: CertAuthority):
    srv = https_server(filter_ca)
    result = check_block(parse_path_target(f"https://127.0.0.1:{srv.port}/"), FAST, NO_DNS)
    assert verdict(result) == ("ok", 0.0, "clean:http")


# ------------------------------------------------------------------- resets and errors


@pytest.mark.parametrize(("scheme", "mode", "method"), [
    ("https", "rst", "reset:tls_handshake"),
    ("https", "fin", "tls_error:UNEXPECTED_EOF_WHILE_READING"),
    ("https", "alert", "tls_error:TLSV1_ALERT_ACCESS_DENIED"),
    ("https", "plain_http", "tls_error:WRONG_VERSION_NUMBER"),
    ("https", "stall", "timeout:tls_handshake"),
    ("http", "rst", "reset:http_request"),
    ("http", "fin", "reset:closed_http_request"),
    ("http", "stall", "timeout:http_response"),
])
def test_middlebox_behaviours_are_named(raw_server: Callable[..., RawServer], scheme: str,
                                        mode: str, method: str):
    srv = raw_server(mode)
    opts = BlockOptions(timeout_s=0.5)
    result = check_block(parse_path_target(f"{scheme}://127.0.0.1:{srv.port}/"), opts, NO_DNS)
    assert verdict(result) == ("ok", 1.0, method)


def test_slow_body_is_judged_by_status_not_called_a_stall(
        raw_server: Callable[..., RawServer]):
    srv = raw_server("slow_body")
    result = check_block(parse_path_target(f"http://127.0.0.1:{srv.port}/"),
                         BlockOptions(timeout_s=0.5), NO_DNS)
    assert verdict(result) == ("ok", 0.0, "clean:http")
    assert result.reason == (f"http://127.0.0.1:{srv.port}/: HTTP 200, no block-page signs "
                             "(body not read: timed out after 0.5 s)")


def test_refused_connect_is_failed_not_blocked(closed_port: int):
    result = check_block(parse_path_target(f"http://127.0.0.1:{closed_port}/"), FAST, NO_DNS)
    assert result.status == "failed" and result.measurements == []
    assert result.reason == (
        f"TCP connect to 127.0.0.1:{closed_port} failed (127.0.0.1: Connection refused): "
        "refused (TCP RST to our SYN): nothing listens there or a filter rejects the "
        "connection; a TCP connect cannot tell which")


def test_host_port_and_ws_targets_stop_at_their_layer(http_server: PageServer,
                                                      https_server: HttpsFactory,
                                                      lab_ca: CertAuthority):
    tcp = check_block(parse_path_target(f"127.0.0.1:{http_server.port}"), FAST, NO_DNS)
    assert verdict(tcp) == ("ok", 0.0, "clean:tcp")
    srv = https_server(lab_ca)
    tls = check_block(parse_path_target(f"wss://127.0.0.1:{srv.port}/ws"), FAST, NO_DNS)
    assert verdict(tls) == ("ok", 0.0, "clean:tls")


def test_stun_targets_are_skipped():
    result = check_block(parse_path_target("stun:127.0.0.1"), FAST, NO_DNS)
    assert result.status == "skipped"

"""Each gateway filter behaviour, proven with a plain client from the classroom."""

from __future__ import annotations

import shutil
import socket
import ssl
import time

import httpx
import pytest

from tests.lab import dnsserver, stun
from tests.lab.certs import FILTER_CA_ORG, LAB_CA_ORG
from tests.lab.endpoints import FAR_PAGE_MARKER
from tests.lab.gwservices import BLOCK_PAGE_MARKER
from tests.lab.netlab import Lab
from tests.lab.plugin import Endpoints

pytestmark = [pytest.mark.lab,
              pytest.mark.skipif(shutil.which("iptables") is None,
                                 reason="gateway filters need iptables (Debian package iptables)")]


def lab_tls(ep: Endpoints) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ep.ca_bundle))


def get(url: str, verify: ssl.SSLContext | bool = False, **kw: object) -> httpx.Response:
    with httpx.Client(verify=verify, trust_env=False, timeout=5, **kw) as c:  # type: ignore[arg-type]
        return c.get(url)


def outcome(fn: object, *args: object) -> str:
    """The exception class name a call ends with, or 'ok'."""
    try:
        fn(*args)  # type: ignore[operator]
    except Exception as e:  # noqa: BLE001 (the class name is the result)
        return type(e).__name__
    return "ok"


def test_dns_filter_nxdomain_sinkhole_and_forwarding(lab: Lab, lab_endpoints: Endpoints) -> None:
    lab.filters.dns(nxdomain=["blocked.lab.test"], sinkhole={"ads.lab.test": lab.gw_cls_addr})
    far_dns = (lab.dns_addr, 53)  # queries to the far resolver are redirected to the filter
    assert lab.call("cls", dnsserver.query, "blocked.lab.test", far_dns) == (3, [])
    assert lab.call("cls", dnsserver.query, "x.blocked.lab.test", far_dns) == (3, [])
    assert lab.call("cls", dnsserver.query, "ads.lab.test", far_dns) == (0, [lab.gw_cls_addr])
    assert lab.call("cls", dnsserver.query, lab.far_name, far_dns) == (0, [lab.far_addr])
    lab.reset()
    assert lab.call("cls", dnsserver.query, "ads.lab.test", far_dns) == (3, [])


@pytest.mark.skipif(shutil.which("dig") is None, reason="needs dig (Debian package dnsutils)")
def test_dns_filter_seen_by_the_system_resolver_path(lab: Lab, lab_endpoints: Endpoints) -> None:
    lab.filters.dns(nxdomain=["blocked.lab.test"])
    out = lab.run("cls", ["dig", "+time=2", "+tries=1", "blocked.lab.test"], check=True).stdout
    assert "status: NXDOMAIN" in out
    out = lab.run("cls", ["getent", "hosts", lab.far_name]).stdout
    assert out.split() == [lab.far_addr, lab.far_name]


def test_tcp_reset_refuses_the_connection(lab: Lab, lab_endpoints: Endpoints) -> None:
    lab.filters.reset_tcp(443)
    connect = socket.create_connection
    assert lab.call("cls", outcome, connect, (lab.far_addr, 443), 3) == "ConnectionRefusedError"
    assert lab.call("cls", outcome, connect, (lab.far_addr, 80), 3) == "ok"


def test_tcp_reset_on_sni_kills_the_handshake_only_for_that_name(lab: Lab,
                                                                 lab_endpoints: Endpoints) -> None:
    lab.filters.reset_tcp(443, sni="blocked.lab.test")

    def handshake(name: str) -> str:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with socket.create_connection((lab.far_addr, 443), 3) as raw, \
                ctx.wrap_socket(raw, server_hostname=name) as tls:
            return tls.version() or "?"

    assert lab.call("cls", outcome, handshake, "blocked.lab.test") == "ConnectionResetError"
    assert lab.call("cls", handshake, lab.far_name).startswith("TLSv1")


def test_block_page_replaces_http_and_sinkholed_https_fails(lab: Lab,
                                                          lab_endpoints: Endpoints) -> None:
    assert FAR_PAGE_MARKER in lab.call("cls", get, lab_endpoints.http_url).text
    lab.filters.block_page()
    page = lab.call("cls", get, lab_endpoints.http_url)
    assert page.status_code == 403 and BLOCK_PAGE_MARKER in page.text
    assert FAR_PAGE_MARKER not in page.text
    sinkhole_https = f"https://{lab.gw_cls_addr}/"
    verify = lab_tls(lab_endpoints)
    assert lab.call("cls", outcome, get, sinkhole_https, verify) == "ConnectError"
    assert BLOCK_PAGE_MARKER in lab.call("cls", get, sinkhole_https).text


def issuer_org(addr: str, port: int, name: str) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((addr, port), 3) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_der_x509_certificate(der)
    return str(cert.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value)


def test_tls_interception_shows_the_filter_ca_and_still_relays(lab: Lab,
                                                              lab_endpoints: Endpoints) -> None:
    assert lab.call("cls", issuer_org, lab.far_addr, 443, lab.far_name) == LAB_CA_ORG
    lab.filters.intercept_tls()
    assert lab.call("cls", issuer_org, lab.far_addr, 443, lab.far_name) == FILTER_CA_ORG
    verify = lab_tls(lab_endpoints)
    assert lab.call("cls", outcome, get, lab_endpoints.https_url, verify) == "ConnectError"
    foreign = ssl.create_default_context(cafile=str(lab.filters.filter_certs.ca_bundle))
    url = lab_endpoints.https_url + "/speed/download?bytes=200000"
    relayed = lab.call("cls", get, url, foreign)
    assert (relayed.status_code, len(relayed.content)) == (200, 200_000)


def test_websocket_severed_after_n_seconds(lab: Lab, lab_endpoints: Endpoints) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    lab.filters.sever(after_s=1.5)

    def hold() -> tuple[str, float]:
        with connect(lab_endpoints.ws_url, proxy=None, open_timeout=5) as ws:
            t0 = time.monotonic()
            ws.send("hi")
            first = str(ws.recv(timeout=3))
            try:
                while time.monotonic() - t0 < 10:
                    ws.send("ping")
                    ws.recv(timeout=3)
                    time.sleep(0.1)
            except ConnectionClosed:
                return first, time.monotonic() - t0
        return first, float("inf")

    first, held = lab.call("cls", hold)
    assert first == "hi"
    assert held == pytest.approx(1.5, abs=0.4)


def test_udp_dropped_but_dns_still_answers(lab: Lab, lab_endpoints: Endpoints) -> None:
    def stun_answer() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(1)
            txid = bytes(12)
            s.sendto(stun.binding_request(txid), (lab.far_addr, 3478))
            return stun.parse_success(s.recv(2048), txid)[0]

    assert lab.call("cls", stun_answer) == lab.cls_addr
    lab.filters.drop_udp()
    assert lab.call("cls", outcome, stun_answer) == "TimeoutError"
    assert lab.call("cls", dnsserver.query, lab.far_name, (lab.dns_addr, 53)) == (0, [lab.far_addr])


def test_explicit_proxy_is_the_only_way_out(lab: Lab, lab_endpoints: Endpoints) -> None:
    proxy = lab.filters.explicit_proxy(enforce=True)
    assert lab.call("cls", outcome, get, lab_endpoints.http_url) == "ConnectError"
    via_http = lab.call("cls", get, lab_endpoints.http_url + "/speed/ping", False, proxy=proxy)
    assert via_http.text == "pong"
    verify = lab_tls(lab_endpoints)
    via_connect = lab.call("cls", get, lab_endpoints.https_url + "/speed/ping", verify, proxy=proxy)
    assert via_connect.text == "pong"
    pac = lab.call("cls", get, f"{proxy}/proxy.pac").text
    assert f'"PROXY {lab.gw_cls_addr}:3128"' in pac

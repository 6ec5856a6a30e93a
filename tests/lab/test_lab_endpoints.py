"""Far-side endpoints answer the classroom: HTTP(S) with the lab CA, WebSocket, STUN, DNS, ICMP."""

from __future__ import annotations

import socket
import ssl
import sys
import time

import httpx
import pytest

from tests.lab import dnsserver, measure, stun
from tests.lab.endpoints import FAR_PAGE_MARKER
from tests.lab.netlab import Lab
from tests.lab.plugin import Collector, Endpoints

pytestmark = pytest.mark.lab


def client(ep: Endpoints, verify: bool | ssl.SSLContext = True) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(ep.ca_bundle)) if verify is True else verify
    return httpx.Client(verify=ctx, trust_env=False, timeout=10)


def test_http_and_https_speed_contract(lab: Lab, lab_endpoints: Endpoints) -> None:
    def exchange() -> list[object]:
        with client(lab_endpoints) as c:
            out: list[object] = []
            for base in (lab_endpoints.http_url, lab_endpoints.https_url):
                out.append(c.get(f"{base}/speed/ping").text)
                down = c.get(f"{base}/speed/download", params={"bytes": 3_000_001})
                out.append((down.status_code, len(down.content), down.headers["content-length"]))
                up = c.post(f"{base}/speed/upload", content=b"u" * 1_234_567)
                out.append(up.json())
                chunked = c.post(f"{base}/speed/upload", content=iter([b"a" * 1000, b"b" * 24]))
                out.append(chunked.json())
            out.append(c.get(f"{lab_endpoints.http_url}/speed/download",
                             params={"bytes": "lots"}).status_code)
            out.append(FAR_PAGE_MARKER in c.get(lab_endpoints.https_url).text)
            return out

    assert lab.call("cls", exchange) == [
        "pong", (200, 3_000_001, "3000001"), {"bytes": 1_234_567}, {"bytes": 1024},
        "pong", (200, 3_000_001, "3000001"), {"bytes": 1_234_567}, {"bytes": 1024},
        400, True]


def test_speedtest_mini_files(lab: Lab, lab_endpoints: Endpoints) -> None:
    def fetch() -> tuple[str, int, str]:
        with client(lab_endpoints) as c:
            base = f"{lab_endpoints.http_url}/speedtest"
            latency = c.get(f"{base}/latency.txt").text
            image = c.get(f"{base}/random350x350.jpg").content
            return latency, len(image), c.post(f"{base}/upload.php", content=b"x" * 5000).text

    assert lab.call("cls", fetch) == ("test=test\n", 350 * 350 * 2, "size=5000")


def test_https_is_trusted_only_with_the_lab_ca(lab: Lab, lab_endpoints: Endpoints) -> None:
    def system_trust() -> str:
        with client(lab_endpoints, verify=ssl.create_default_context()) as c:
            try:
                c.get(lab_endpoints.https_url)
            except httpx.ConnectError as e:
                return str(e)
        return "connected"

    assert "CERTIFICATE_VERIFY_FAILED" in lab.call("cls", system_trust)


def test_hostname_resolves_through_the_lab_dns_inside_cls(lab: Lab,
                                                          lab_endpoints: Endpoints) -> None:
    script = ("import httpx, ssl, sys; ctx = ssl.create_default_context(cafile=sys.argv[2]); "
              "print(httpx.get(sys.argv[1] + '/speed/ping', verify=ctx, trust_env=False).text)")
    out = lab.run("cls", [sys.executable, "-c", script, lab_endpoints.https_name_url,
                          str(lab_endpoints.ca_bundle)], check=True)
    assert out.stdout == "pong\n"
    rcode, addrs = lab.call("cls", dnsserver.query, lab_endpoints.hostname, (lab.dns_addr, 53))
    assert (rcode, addrs) == (0, [lab.far_addr])
    assert lab.call("cls", dnsserver.query, "www.example.com", (lab.dns_addr, 53)) == (3, [])


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_websocket_echo_stays_open(lab: Lab, lab_endpoints: Endpoints, secure: bool) -> None:
    from websockets.sync.client import connect

    def hold() -> tuple[str, float, str]:
        ctx = ssl.create_default_context(cafile=str(lab_endpoints.ca_bundle)) if secure else None
        url = lab_endpoints.wss_url if secure else lab_endpoints.ws_url
        with connect(url, ssl=ctx, proxy=None, open_timeout=5) as ws:
            t0 = time.monotonic()
            ws.send("hello")
            first = ws.recv(timeout=5)
            time.sleep(3)
            ws.send("still here")
            second = ws.recv(timeout=5)
            return str(first), time.monotonic() - t0, str(second)

    first, held, second = lab.call("cls", hold)
    assert (first, second) == ("hello", "still here")
    assert held >= 3


def test_stun_binding_reports_the_classroom_address(lab: Lab, lab_endpoints: Endpoints) -> None:
    def bind(port: int) -> tuple[tuple[str, int], int]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.bind((lab.cls_addr, 0))
            txid = bytes(range(12))
            s.sendto(stun.binding_request(txid), (lab_endpoints.addr, port))
            return stun.parse_success(s.recv(2048), txid), s.getsockname()[1]

    for port in (3478, 19302):
        mapped, local_port = lab.call("cls", bind, port)
        assert mapped == (lab.cls_addr, local_port)


def test_udp_echo_and_icmp(lab: Lab, lab_endpoints: Endpoints) -> None:
    echo = lab.call("cls", measure.udp_echo, lab_endpoints.addr, lab_endpoints.udp_echo_port, 50)
    assert echo.arrivals == tuple(range(50))
    pinged = measure.ping(lab, "cls", lab_endpoints.addr, 3, 0.05)
    assert (pinged.transmitted, pinged.received) == (3, 3)


def test_unprivileged_icmp_follows_ping_group_range(lab: Lab) -> None:
    def icmp_socket() -> str:
        try:
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP).close()
        except PermissionError:
            return "refused"
        return "allowed"

    assert lab.read_sysctl("cls", "net.ipv4.ping_group_range").split() == ["1", "0"]
    assert lab.call("cls", icmp_socket) == "refused"
    lab.allow_unprivileged_icmp()
    assert lab.call("cls", icmp_socket) == "allowed"
    lab.reset()
    assert lab.call("cls", icmp_socket) == "refused"


def test_real_collector_serves_the_same_speed_contract(lab: Lab, lab_collector: Collector) -> None:
    def exchange() -> list[object]:
        with httpx.Client(trust_env=False, timeout=10) as c:
            url = lab_collector.url
            body = c.get(f"{url}/speed/download", params={"bytes": 100_000}).content
            return [c.get(f"{url}/speed/ping").text, len(body),
                    c.post(f"{url}/speed/upload", content=b"u" * 4321).json()]

    assert lab.call("cls", exchange) == ["pong", 100_000, {"bytes": 4321}]

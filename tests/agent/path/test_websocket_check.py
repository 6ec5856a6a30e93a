import base64
import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent.probes.pathnet import parse_path_target
from agent.probes.websocket_check import HoldOptions, check_websocket
from agent.wire import ProbeResult, new_report, semantic_errors
from tests.agent.path.conftest import CertAuthority, FakeResolver, PageServer

pytest.importorskip("websockets")

from websockets.sync.server import ServerConnection, serve  # noqa: E402

FAST = HoldOptions(hold_s=2.0, ping_interval_s=0.5, ping_timeout_s=0.5, timeout_s=2.0)
NO_DNS = FakeResolver({})


def stays_open(ws: ServerConnection) -> None:
    for _ in ws:
        pass


def closes_after_1s(ws: ServerConnection) -> None:
    time.sleep(1.0)
    ws.close(1001, "lesson over")


def severs_after_1s(ws: ServerConnection) -> None:
    time.sleep(1.0)
    ws.socket.shutdown(socket.SHUT_RDWR)  # no Close frame: the TCP connection just ends


@pytest.fixture
def ws_server() -> Iterator[Callable[..., int]]:
    servers: list[Any] = []

    def start(handler: Callable[[ServerConnection], None], **kw: Any) -> int:
        srv = serve(handler, "127.0.0.1", 0, **kw)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return int(srv.socket.getsockname()[1])

    yield start
    for srv in servers:
        srv.shutdown()


def hold_of(result: ProbeResult) -> tuple[float, str]:
    assert result.status == "ok", result.reason
    [m] = result.measurements
    assert (m.metric, m.unit) == ("websocket_hold_s", "s")
    assert semantic_errors(new_report("a", "0", [result])) == []
    assert m.value is not None
    return m.value, m.method


def test_open_socket_is_held_for_the_whole_time(ws_server: Callable[..., int]):
    port = ws_server(stays_open)
    start = time.perf_counter()
    result = check_websocket(parse_path_target(f"ws://127.0.0.1:{port}/"), FAST, NO_DNS)
    elapsed = time.perf_counter() - start
    value, method = hold_of(result)
    assert method == "websocket_ping:held"
    assert 2.0 <= value < 2.2
    assert elapsed < 3.0
    assert result.reason == "held the whole 2 s requested (a lower bound)"


def test_close_by_the_server_after_1s(ws_server: Callable[..., int]):
    port = ws_server(closes_after_1s)
    result = check_websocket(parse_path_target(f"ws://127.0.0.1:{port}/"), FAST, NO_DNS)
    value, method = hold_of(result)
    assert method == "websocket_ping:closed_by_peer"
    assert 0.95 <= value < 1.2
    assert result.reason is not None
    assert result.reason.endswith("close_code=1001; close_reason='lesson over'")


def test_severed_connection_after_1s(ws_server: Callable[..., int]):
    port = ws_server(severs_after_1s)
    result = check_websocket(parse_path_target(f"ws://127.0.0.1:{port}/"), FAST, NO_DNS)
    value, method = hold_of(result)
    assert method == "websocket_ping:severed"
    assert 0.95 <= value < 1.2


def test_wss_through_an_interception_certificate(ws_server: Callable[..., int],
                                                 filter_ca: CertAuthority):
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    filter_ca.ca.issue_cert("127.0.0.1").configure_cert(context)
    port = ws_server(stays_open, ssl=context)
    opts = HoldOptions(hold_s=0.6, ping_interval_s=0.2, ping_timeout_s=0.5, timeout_s=2.0)
    value, method = hold_of(check_websocket(parse_path_target(f"wss://127.0.0.1:{port}/"),
                                            opts, NO_DNS))
    assert method == "websocket_ping:held" and 0.6 <= value < 0.8


class SilentAfterHandshake:
    """Completes the WebSocket handshake by hand, then never reads again (no pongs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self) -> None:
        conn, _ = self.sock.accept()
        self.conns.append(conn)
        request = conn.recv(4096).decode()
        key = next(line.split(":", 1)[1].strip() for line in request.split("\r\n")
                   if line.lower().startswith("sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").encode())

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        self.sock.close()


def test_unanswered_ping_is_pong_timeout():
    srv = SilentAfterHandshake()
    try:
        port = srv.sock.getsockname()[1]
        result = check_websocket(parse_path_target(f"ws://127.0.0.1:{port}/"), FAST, NO_DNS)
    finally:
        srv.close()
    value, method = hold_of(result)
    assert (method, value) == ("websocket_ping:pong_timeout", 0.0)  # never proven alive
    assert result.reason == "pong timeout after 0 s of the 2 s requested; " \
                            "no pong within 0.5 s"


def test_http_server_refusing_the_upgrade_is_failed(http_server: PageServer, closed_port: int):
    result = check_websocket(parse_path_target(f"ws://127.0.0.1:{http_server.port}/"), FAST,
                             NO_DNS)
    assert result.status == "failed" and result.measurements == []
    assert result.reason is not None
    assert result.reason.startswith(f"WebSocket handshake with ws://127.0.0.1:"
                                    f"{http_server.port}/ failed: ")
    refused = check_websocket(parse_path_target(f"ws://127.0.0.1:{closed_port}/"), FAST,
                              NO_DNS)
    assert refused.reason == f"cannot reach 127.0.0.1:{closed_port}: Connection refused"


def test_non_websocket_target_is_skipped():
    result = check_websocket(parse_path_target("https://127.0.0.1/"), FAST, NO_DNS)
    assert result.status == "skipped"

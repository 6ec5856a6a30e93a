"""Far-side endpoints for the lab, in one process: HTTP(S), WebSocket, STUN, UDP echo, DNS.

    python -m tests.lab.endpoints --addr 10.77.10.1 --cert server.pem [--zone NAME=ADDR ...]

HTTP on ``--http-port`` (80) and HTTPS on ``--https-port`` (443) serve the collector's
speed-test contract and the speedtest-mini files:

- ``GET /speed/download?bytes=N``  N bytes (application/octet-stream, Content-Length)
- ``POST /speed/upload``           reads the body (Content-Length or chunked) → ``{"bytes": n}``
- ``GET /speed/ping``              ``pong`` (text/plain), as the collector answers
- ``GET /speedtest/latency.txt`` → ``test=test``; ``/speedtest/random{N}x{N}.jpg`` → 2·N·N
  bytes; ``POST /speedtest/upload.php`` → ``size=n``
- ``GET /`` a small HTML page (``FAR_PAGE_MARKER`` in it)

WebSocket echo on ``--ws-port`` (8765, ws://) and ``--wss-port`` (8766, wss://), held open
until the client closes. STUN Binding on UDP ``--stun-port`` (3478 and 19302). UDP echo on
``--udp-echo-port`` (7). DNS (``tests.lab.dnsserver``) on UDP 53 with ``--zone`` records.
Prints ``ready`` on stdout once every socket is bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from urllib.parse import parse_qs, urlsplit

from tests.lab import dnsserver, stun

FAR_PAGE_MARKER = "classprobe-lab-far-side"
BLOCK = os.urandom(1 << 16)
MAX_DOWNLOAD = 1 << 34
RANDOM_JPG = re.compile(r"^/speedtest/random(\d+)x(\d+)\.jpg$")


def send_bytes(wfile: BufferedIOBase, n: int) -> None:
    view = memoryview(BLOCK)
    while n > 0:
        chunk = view[:min(n, len(BLOCK))]
        wfile.write(chunk)
        n -= len(chunk)


class SpeedHandler(BaseHTTPRequestHandler):
    """The speed-test contract over HTTP/1.1 with keep-alive."""

    protocol_version = "HTTP/1.1"
    server_version = "classprobe-lab"
    timeout = 120

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _stream(self, n: int, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(n))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        send_bytes(self.wfile, n)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        if url.path == "/speed/download":
            raw = parse_qs(url.query).get("bytes", ["0"])[0]
            if not raw.isdigit() or int(raw) > MAX_DOWNLOAD:
                detail = f"bytes={raw!r} is not 0..{MAX_DOWNLOAD}"
                self._reply(400, json.dumps({"detail": detail}).encode())
                return
            self._stream(int(raw), "application/octet-stream")
        elif url.path == "/speed/ping":
            self._reply(200, b"pong", "text/plain; charset=utf-8")
        elif url.path == "/speedtest/latency.txt":
            self._reply(200, b"test=test\n", "text/plain")
        elif m := RANDOM_JPG.match(url.path):
            self._stream(int(m.group(1)) * int(m.group(2)) * 2, "image/jpeg")
        elif url.path == "/":
            page = f"<html><body><h1>{FAR_PAGE_MARKER}</h1></body></html>".encode()
            self._reply(200, page, "text/html; charset=utf-8")
        else:
            self._reply(404, json.dumps({"detail": f"no such path {url.path!r}"}).encode())

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path not in ("/speed/upload", "/speedtest/upload.php"):
            self._reply(404, json.dumps({"detail": f"no such path {path!r}"}).encode())
            return
        n = self._drain_body()
        if path == "/speed/upload":
            self._reply(200, json.dumps({"bytes": n}).encode())
        else:
            self._reply(200, f"size={n}".encode(), "text/plain")

    def _drain_body(self) -> int:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._drain_chunked()
        remaining = int(self.headers.get("Content-Length") or 0)
        total = 0
        while remaining > 0:
            data = self.rfile.read(min(remaining, 1 << 16))
            if not data:
                break
            total += len(data)
            remaining -= len(data)
        return total

    def _drain_chunked(self) -> int:
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return total
            while size > 0:
                data = self.rfile.read(min(size, 1 << 16))
                if not data:
                    return total
                total += len(data)
                size -= len(data)
            self.rfile.readline()


class LabHTTPServer(ThreadingHTTPServer):
    """A listen backlog of 128, not socketserver's 5: back-to-back connects (the latency
    probe's) overflowed 5 and each dropped SYN cost a 1 s retransmission."""

    request_queue_size = 128


class TLSHTTPServer(LabHTTPServer):
    """HTTPS: the TLS handshake runs in the request thread (see SpeedHandler.setup)."""

    def handle_error(self, request: object, client_address: object) -> None:
        """One line for a failed handshake (a client that distrusts the lab CA), not a trace."""
        error = sys.exc_info()[1]
        if isinstance(error, (ssl.SSLError, ConnectionError)):
            print(f"TLS from {client_address}: {error}", file=sys.stderr)
        else:
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def __init__(self, addr: tuple[str, int], context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(addr, SpeedHandler)

    def get_request(self) -> tuple[socket.socket, object]:
        sock, addr = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True,
                                        do_handshake_on_connect=False), addr


def udp_loop(sock: socket.socket, answer: Callable[[bytes, tuple[str, int]], bytes | None]) -> None:
    while True:
        data, peer = sock.recvfrom(4096)
        reply = answer(data, peer)
        if reply is not None:
            sock.sendto(reply, peer)


def udp_socket(addr: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    return s


def start_thread(fn: Callable[..., object], *args: object) -> None:
    threading.Thread(target=fn, args=args, daemon=True).start()


async def websocket_servers(addr: str, ws_port: int, wss_port: int, context: ssl.SSLContext | None,
                            bound: threading.Event) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, addr, ws_port, ping_interval=None):
        if context is None:
            bound.set()
            await asyncio.Future()
        async with serve(echo, addr, wss_port, ssl=context, ping_interval=None):
            bound.set()
            await asyncio.Future()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.lab.endpoints", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", required=True)
    p.add_argument("--cert", help="PEM with the server key and certificate chain (HTTPS, wss)")
    p.add_argument("--http-port", type=int, default=80)
    p.add_argument("--https-port", type=int, default=443)
    p.add_argument("--ws-port", type=int, default=8765)
    p.add_argument("--wss-port", type=int, default=8766)
    p.add_argument("--stun-port", type=int, action="append", default=None)
    p.add_argument("--udp-echo-port", type=int, default=7)
    p.add_argument("--dns-port", type=int, default=53)
    p.add_argument("--zone", action="append", default=[], help="NAME=ADDRESS for the DNS")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert)
    servers: list[ThreadingHTTPServer] = [LabHTTPServer((args.addr, args.http_port),
                                                         SpeedHandler)]
    if context is not None:
        servers.append(TLSHTTPServer((args.addr, args.https_port), context))
    for server in servers:
        start_thread(server.serve_forever)
    for port in args.stun_port or [3478, 19302]:
        start_thread(udp_loop, udp_socket(args.addr, port), stun.answer)
    start_thread(udp_loop, udp_socket(args.addr, args.udp_echo_port), lambda d, _p: d)
    rules = dnsserver.Rules(zone=dict(z.split("=", 1) for z in args.zone))
    start_thread(dnsserver.serve, udp_socket(args.addr, args.dns_port), rules)
    bound = threading.Event()
    failed: list[BaseException] = []

    def run_websockets() -> None:
        try:
            asyncio.run(websocket_servers(args.addr, args.ws_port, args.wss_port, context, bound))
        except BaseException as e:  # noqa: BLE001 (reported by the main thread below)
            failed.append(e)
            bound.set()

    start_thread(run_websockets)
    if not bound.wait(20) or failed:
        raise SystemExit(f"the WebSocket servers did not start: {failed or 'timeout after 20 s'}")
    print("ready", flush=True)
    threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

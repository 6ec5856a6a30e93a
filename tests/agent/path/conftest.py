"""Loopback servers and an injected resolver for the path checks' tests.

Everything listens on 127.0.0.1 and every name is resolved by :class:`FakeResolver`:
no test sends a packet (or a DNS query) off this machine.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


class FakeResolver:
    """``resolve(host, timeout)`` from a table: a list of addresses or an exception."""

    def __init__(self, table: dict[str, list[str] | BaseException]) -> None:
        self.table = table
        self.asked: list[str] = []

    def __call__(self, host: str, timeout_s: float) -> list[str]:
        self.asked.append(host)
        answer = self.table.get(host)
        if answer is None:
            raise AssertionError(f"test resolver has no entry for {host!r}")
        if isinstance(answer, BaseException):
            raise answer
        return list(answer)


def nxdomain() -> socket.gaierror:
    return socket.gaierror(socket.EAI_NONAME, "Name or service not known")


# ----------------------------------------------------------------------------- HTTP(S)


@dataclass
class Page:
    status: int = 200
    body: bytes = b"<html><head><title>Quiz</title></head><body>Welcome to the quiz</body></html>"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PageServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        page = self.server.pages.get(self.path, Page(404, b"not found"))
        self.send_response(page.status)
        for name, value in page.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(page.body)))
        self.end_headers()
        self.wfile.write(page.body)


class PageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pages: dict[str, Page]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pages = pages
        self.requests: list[tuple[str, str]] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def _start(srv: PageServer) -> PageServer:
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()
    return srv


@pytest.fixture
def page_server() -> Iterator[Callable[[dict[str, Page]], PageServer]]:
    """``page_server({"/": Page(...)})``: a plain HTTP server with those pages."""
    started: list[PageServer] = []

    def start(pages: dict[str, Page]) -> PageServer:
        started.append(_start(PageServer(pages)))
        return started[-1]

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def http_server(page_server: Callable[[dict[str, Page]], PageServer]) -> PageServer:
    return page_server({"/": Page()})


@dataclass(frozen=True)
class CertAuthority:
    ca: Any  # trustme.CA
    bundle: Path
    name: str


def _authority(tmp_path: Path, organisation: str, stem: str) -> CertAuthority:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA(organization_name=organisation)
    bundle = tmp_path / f"{stem}.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return CertAuthority(ca, bundle, organisation)


@pytest.fixture
def lab_ca(tmp_path: Path) -> CertAuthority:
    """The legitimate roots (given to the checks as ``ca_bundle``)."""
    return _authority(tmp_path, "classprobe test roots", "legit")


@pytest.fixture
def filter_ca(tmp_path: Path) -> CertAuthority:
    """A foreign CA, as a school filter intercepting TLS would use."""
    return _authority(tmp_path, "Lab Filter Ltd interception CA", "filter")


HttpsFactory = Callable[..., PageServer]


@pytest.fixture
def https_server() -> Iterator[HttpsFactory]:
    """``https_server(authority, identities=("127.0.0.1",), pages=None, **cert_kw)``."""
    started: list[PageServer] = []

    def start(authority: CertAuthority, identities: tuple[str, ...] = ("127.0.0.1",),
              pages: dict[str, Page] | None = None, **cert_kw: Any) -> PageServer:
        cert = authority.ca.issue_cert(*identities, **cert_kw)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        srv = PageServer(pages or {"/": Page()})
        srv.socket = context.wrap_socket(srv.socket, server_side=True,
                                         do_handshake_on_connect=False)
        started.append(_start(srv))
        return srv

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


# ------------------------------------------------------------------ misbehaving TCP peer


class RawServer:
    """Accepts TCP connections and misbehaves as told: ``rst``, ``fin``, ``alert``,
    ``plain_http``, ``stall``, ``slow_body``, after reading the client's first bytes."""

    def __init__(self, mode: str, stall_s: float = 2.0) -> None:
        self.mode, self.stall_s = mode, stall_s
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._misbehave, args=(conn,), daemon=True).start()

    def _misbehave(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(4096)
            except OSError:
                return
            if self.mode == "rst":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif self.mode == "alert":  # TLS alert record: fatal, access_denied (49)
                conn.sendall(bytes([21, 3, 3, 0, 2, 2, 49]))
                time.sleep(0.2)
            elif self.mode == "plain_http":
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                time.sleep(0.2)
            elif self.mode == "stall":
                self.stop.wait(self.stall_s)
            elif self.mode == "slow_body":  # headers, then the body never completes
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
                self.stop.wait(self.stall_s)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(2)


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(mode: str, stall_s: float = 2.0) -> RawServer:
        servers.append(RawServer(mode, stall_s))
        return servers[-1]

    yield start
    for srv in servers:
        srv.close()


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

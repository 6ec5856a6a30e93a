from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent import standin
from tests.agent.supervisor_fakes import FAKE_WORKER


@pytest.fixture
def server() -> Iterator[standin.StandInServer]:
    srv, thread = standin.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS stand-in with a certificate from a throwaway trustme CA.

    Yields the base URL and the CA bundle that makes it trusted."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    srv = standin.StandInServer()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    srv.socket = context.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{srv.server_address[1]}", bundle
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def fake_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A worker script that records its arguments (:func:`supervisor_fakes.calls`) and
    prints a summary shaped by FAKE_* environment variables."""
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    monkeypatch.setenv("FAKE_WORKER_LOG", str(tmp_path / "calls.jsonl"))
    return script

"""The collector on a real uvicorn socket (127.0.0.1): streaming, limits, races, speedtest-cli."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine
from sqlmodel import Session

from collector.app import create_app
from collector.models import Measurement, Report
from collector.services.sites import create_site
from collector.settings import Settings
from tests.collector.conftest import Enrolled, batch_body, count, make_report


class LiveServer:
    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/live.db",
                                       data_dir=tmp_path, **settings))
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=0,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.state.engine
        return engine

    def enrol(self) -> Enrolled:
        with Session(self.engine) as session:
            token = create_site(session, "Live School")
        body = httpx.post(f"{self.url}/api/v1/enrol", json={"token": token, "room": "R1"}).json()
        return Enrolled(body["agent_id"], body["credential"])


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path, max_body_bytes=64_000) as server:
        yield server


def test_download_and_upload_over_a_socket(live: LiveServer) -> None:
    size = 5 * 1024 * 1024 + 3
    with httpx.stream("GET", f"{live.url}/speed/download", params={"bytes": size}) as resp:
        assert resp.headers["content-length"] == str(size)
        got = sum(len(chunk) for chunk in resp.iter_raw())
    assert got == size

    def body() -> Iterator[bytes]:
        for _ in range(64):
            yield b"\0" * 65_536

    resp = httpx.post(f"{live.url}/speed/upload", content=body())
    assert resp.json() == {"bytes": 64 * 65_536}


def test_client_leaving_a_big_download_stops_the_stream(live: LiveServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from collector import streaming

    produced: list[int] = []
    real = streaming._random_chunks

    async def counting(block: bytes, size: int) -> AsyncIterator[bytes]:
        async for chunk in real(block, size):
            produced.append(len(chunk))
            yield chunk

    monkeypatch.setattr(streaming, "_random_chunks", counting)
    with httpx.stream("GET", f"{live.url}/speed/download", params={"bytes": 1 << 30}) as resp:
        got = 0
        for chunk in resp.iter_raw(1 << 20):  # read at full speed, then hang up
            got += len(chunk)
            if got > 20_000_000:
                break
    time.sleep(0.5)
    assert 20_000_000 < sum(produced) < 200_000_000
    assert httpx.get(f"{live.url}/speed/ping").status_code == 200


def test_oversized_chunked_upload_gets_413_from_a_real_server(live: LiveServer) -> None:
    who = live.enrol()

    def body() -> Iterator[bytes]:
        for _ in range(100):
            yield b" " * 10_000

    resp = httpx.post(f"{live.url}/api/v1/reports", headers=who.headers, content=body())
    assert resp.status_code == 413
    assert "64000-byte limit" in resp.json()["detail"]
    ok = httpx.post(f"{live.url}/api/v1/reports", headers=who.headers,
                    content=batch_body(make_report(who.agent_id)))
    assert ok.status_code == 200


def test_client_leaving_mid_upload_is_no_server_error(live: LiveServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    for path in ("/speed/upload", "/speedtest/upload.php"):
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                         "\r\n".encode() + b"a" * 1000)
        time.sleep(0.2)
    assert httpx.get(f"{live.url}/speed/ping").status_code == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_simultaneous_uploads_of_one_batch_store_it_once(live: LiveServer) -> None:
    who = live.enrol()
    body = batch_body(*[make_report(who.agent_id) for _ in range(20)])

    def upload(_: int) -> httpx.Response:
        return httpx.post(f"{live.url}/api/v1/reports", headers=who.headers, content=body,
                          timeout=30)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(upload, range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    accepted = [rid for r in responses for rid in r.json()["accepted"]]
    assert len(accepted) == len(set(accepted)) == 20
    assert count(live.engine, Report) == 20
    assert count(live.engine, Measurement) == 40


def test_stock_speedtest_cli_measures_against_the_collector(live: LiveServer) -> None:
    speedtest = pytest.importorskip("speedtest")
    sizes = [350, 500]

    class LocalSpeedtest(speedtest.Speedtest):  # type: ignore[misc,name-defined]
        def get_config(self) -> dict[str, Any]:  # lab-facts §2: no speedtest.net request
            self.config.update({
                "client": {"ip": "", "lat": "0", "lon": "0", "isp": "lab", "country": "XX"},
                "ignore_servers": [], "sizes": {"upload": [32768, 524288], "download": sizes},
                "counts": {"upload": 2, "download": 2}, "threads": {"upload": 2, "download": 2},
                "length": {"upload": 2, "download": 2}, "upload_max": 4})
            self.lat_lon = (0.0, 0.0)
            config: dict[str, Any] = self.config
            return config

    st = LocalSpeedtest(timeout=10)
    st.get_best_server([{"url": f"{live.url}/speedtest/upload.php", "id": 1, "sponsor": "lab",
                         "name": "lab", "d": 0}])
    st.download()
    st.upload()
    results = st.results.dict()
    assert results["bytes_received"] == sum(2 * n * n * 2 for n in sizes)
    assert results["bytes_sent"] > 0
    assert results["download"] > 0 and results["upload"] > 0
    assert 0 < results["ping"] < 1000

"""Speed-test endpoints and the speedtest-mini compatible ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from collector.streaming import RANDOM_BLOCK_BYTES


@pytest.mark.parametrize("size", [0, 1, 1000, RANDOM_BLOCK_BYTES, 3 * RANDOM_BLOCK_BYTES + 7])
def test_download_sends_exactly_n_bytes(client: TestClient, size: int) -> None:
    resp = client.get("/speed/download", params={"bytes": size},
                      headers={"Accept-Encoding": "gzip"})
    assert resp.status_code == 200
    assert len(resp.content) == size
    assert resp.headers["content-length"] == str(size)
    assert resp.headers["content-type"] == "application/octet-stream"
    assert "content-encoding" not in resp.headers
    assert resp.headers["cache-control"] == "no-store"


def test_download_is_not_trivially_compressible(client: TestClient) -> None:
    import zlib

    data = client.get("/speed/download", params={"bytes": 100_000}).content
    assert len(zlib.compress(data)) > 99_000


def test_download_cap_and_bad_values(client: TestClient, app: FastAPI,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.state.settings, "max_download_bytes", 5000)
    assert len(client.get("/speed/download?bytes=5000").content) == 5000
    resp = client.get("/speed/download?bytes=5001")
    assert resp.status_code == 400
    assert resp.json() == {"detail": "bytes=5001 is above the download cap of 5000 bytes "
                                     "(max_download_bytes)"}
    resp = client.get("/speed/download?bytes=-1")
    assert (resp.status_code, resp.json()) == (400, {"detail": "bytes=-1 must be >= 0"})
    assert client.get("/speed/download?bytes=lots").status_code == 422
    assert client.get("/speed/download").status_code == 422


def test_upload_counts_what_it_received(client: TestClient) -> None:
    resp = client.post("/speed/upload", content=b"x" * 123_457)
    assert resp.status_code == 200
    assert resp.json() == {"bytes": 123_457}
    assert resp.headers["cache-control"] == "no-store"

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"y" * 65_536

    assert client.post("/speed/upload", content=chunks()).json() == {"bytes": 40 * 65_536}
    assert client.post("/speed/upload").json() == {"bytes": 0}


def test_upload_cap(client: TestClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.state.settings, "max_upload_bytes", 1000)
    resp = client.post("/speed/upload", content=iter([b"z" * 600, b"z" * 600]))
    assert resp.status_code == 413
    assert "1000-byte limit" in resp.json()["detail"]


def test_ping_is_tiny_and_uncached(client: TestClient) -> None:
    resp = client.get("/speed/ping")
    assert resp.status_code == 200
    assert len(resp.content) <= 16
    assert resp.headers["cache-control"] == "no-store"


def test_speedtest_mini_latency(client: TestClient) -> None:
    resp = client.get("/speedtest/latency.txt", params={"x": "123"})
    assert resp.status_code == 200
    assert resp.text.startswith("test=test")


@pytest.mark.parametrize("side", [350, 1000, 4000])
def test_speedtest_mini_random_images(client: TestClient, side: int) -> None:
    resp = client.get(f"/speedtest/random{side}x{side}.jpg", params={"x": "1.0"})
    assert resp.status_code == 200
    assert len(resp.content) == side * side * 2
    assert resp.headers["content-length"] == str(side * side * 2)


@pytest.mark.parametrize(("path", "message"), [
    ("/speedtest/random349x349.jpg", "width 349 is outside 350..4000"),
    ("/speedtest/random500x4001.jpg", "height 4001 is outside 350..4000"),
])
def test_speedtest_mini_random_out_of_range(client: TestClient, path: str, message: str) -> None:
    resp = client.get(path)
    assert (resp.status_code, resp.json()) == (400, {"detail": message})


def test_speedtest_mini_upload(client: TestClient) -> None:
    resp = client.post("/speedtest/upload.php", content=b"content1=" + b"A" * 524_279)
    assert resp.status_code == 200
    assert resp.text == "size=524288"
    probe = client.get("/speedtest/upload.php")  # how `speedtest-cli --mini` recognises us
    assert (probe.status_code, probe.text) == (200, "size=0")

"""The speedtest-cli bandwidth backend: pure parser, adapter, CLI. Network: 127.0.0.1 only.

- Parser: ``results.dict()`` fixtures, one recorded (self-hosted run of speedtest-cli 2.1.3
  against the real collector on 127.0.0.1, unshaped) and one hand-made in the 2.1.3 shape
  of a public speedtest.net run (no internet here).
- Adapter: the real ``classprobe collector serve`` in a subprocess on 127.0.0.1; its access
  log shows every request speedtest-cli made. ``socket.getaddrinfo`` is replaced by one
  that refuses every name but 127.0.0.1, so a speedtest.net lookup would fail the test.
- Public mode: the real speedtest.net code path, with the two speedtest.net documents
  (config, server list) served from hand-made fixtures by a urllib handler added to
  speedtest-cli's opener; the chosen "public" server is the local collector.
- CLI: against a paced speedtest-mini stand-in (known rate, so the phases last long
  enough to be trusted and the download has a truth to meet).
"""

from __future__ import annotations

import email.message
import importlib.util
import io
import json
import re
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from agent.cli import main
from agent.config import AgentConfig, ConfigError, load_config
from agent.probes import bandwidth
from agent.probes.speedtest_backend import (
    NOT_INSTALLED,
    SpeedtestOptions,
    SpeedtestRun,
    measure,
    mini_server_url,
    to_results,
)
from agent.wire import ProbeResult, new_report, semantic_errors

try:
    import speedtest
except ImportError:  # the parser and not-installed tests still run
    speedtest = None

needs_speedtest = pytest.mark.skipif(speedtest is None, reason=NOT_INSTALLED)
FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
VERSION = getattr(speedtest, "__version__", "?")
DOWN = f"speedtest-cli_{VERSION}_download"
UP = f"speedtest-cli_{VERSION}_upload_bytes_sent"
SPEEDTEST_NET = {"www.speedtest.net", "c.speedtest.net"}
# Tiny runs whose every request completes, so counts and bytes are exact.
SMALL = SpeedtestOptions(seconds=30, streams=3, download_sides=(350, 500), download_count=2,
                         upload_sizes=(32768, 524288), upload_count=2,
                         trusted_window_s=0, trusted_bytes=0)


def load_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def values(result: ProbeResult) -> dict[str, tuple[float | None, str]]:
    return {m.metric: (m.value, m.method) for m in result.measurements}


# --- the pure parser ---

def test_recorded_self_hosted_run_parses_to_exact_values() -> None:
    run = SpeedtestRun("self-hosted", "2.1.3", load_fixture("speedtest_results_selfhosted.json"),
                       {"download": 8, "upload": 8}, ("download", "upload"))
    down, up = to_results(run, SpeedtestOptions())
    assert (down.status, up.status) == ("ok", "ok")
    assert down.target == up.target == "http://127.0.0.1:18731/speedtest/upload.php"
    m = "speedtest-cli_2.1.3_download"
    assert values(down) == {"download_mbps": (2123.396, m), "bytes": (413480000, m),
                            "duration_s": (1.558, m), "streams": (8, m)}
    m = "speedtest-cli_2.1.3_upload_bytes_sent"
    assert values(up) == {"upload_mbps": (1150.878, m), "bytes": (151519232, m),
                          "duration_s": (1.053, m), "streams": (8, m)}
    assert down.reason == (
        "speedtest-cli 2.1.3 against self-hosted speedtest-mini endpoints "
        "http://127.0.0.1:18731/speedtest/; rate = bytes read / the whole phase (connection "
        "set-up and slow start included, no warm-up excluded); speedtest-cli 'ping' 4.588 ms "
        "= sum of 3 fresh-connection GETs of latency.txt / 6 (about one RTT including TCP "
        "connect); no catalogue metric means that, so it is not reported as one")
    assert "bytes handed to the socket, not bytes the server received" in (up.reason or "")
    assert "ping" not in (up.reason or "")
    assert semantic_errors(new_report("a", "0", [down, up])) == []


def test_hand_made_public_run_is_labelled_as_public() -> None:
    run = SpeedtestRun("public", "2.1.3", load_fixture("speedtest_results_public.json"),
                       {"download": 8, "upload": 2}, ("download", "upload"))
    down, up = to_results(run, SpeedtestOptions())
    m = "speedtest-cli_2.1.3_download"
    assert values(down) == {"download_mbps": (47.186, m), "bytes": (58982400, m),
                            "duration_s": (10.0, m), "streams": (8, m)}
    m = "speedtest-cli_2.1.3_upload_bytes_sent"
    assert values(up) == {"upload_mbps": (9.437, m), "bytes": (11796480, m),
                          "duration_s": (10.0, m), "streams": (2, m)}
    label = ("public speedtest.net server 12345 (Example ISP, London, United Kingdom, 12 km "
             "away) at http://speedtest.example-isp.net:8080/speedtest/upload.php")
    assert (up.reason or "").startswith(f"speedtest-cli 2.1.3 against {label}; ")
    assert "18.734 ms" in (down.reason or "")
    assert "192.0.2.10" not in f"{down.reason}{up.reason}"  # the client's IP stays out


def run_with(results: dict[str, Any], completed: tuple[Any, ...] = ("download", "upload"),
             error: str | None = None) -> list[ProbeResult]:
    return to_results(SpeedtestRun("self-hosted", "2.1.3", results, {}, completed, error),
                      SpeedtestOptions())


def test_bad_or_missing_numbers_fail_naming_the_field() -> None:
    bad = {**load_fixture("speedtest_results_selfhosted.json"), "bytes_sent": "lots"}
    down, up = run_with(bad)
    assert down.status == "ok"
    assert up.status == "failed" and up.measurements == []
    assert up.reason == ("self-hosted speedtest-mini endpoints http://127.0.0.1:18731/speedtest/"
                         ": speedtest-cli result 'bytes_sent' has bad value 'lots'")
    assert [r.status for r in run_with({})] == ["failed", "failed"]
    assert run_with({})[0].reason == ("self-hosted speedtest-cli test: speedtest-cli result "
                                      "'download' has bad value None")
    assert run_with({})[0].target is None


def test_no_data_and_short_transfers_are_failed_not_numbers() -> None:
    recorded = load_fixture("speedtest_results_selfhosted.json")
    down, up = run_with({**recorded, "download": 0, "bytes_received": 0, "upload": 8e6,
                         "bytes_sent": 90_000})
    assert down.reason == ("speedtest-cli download moved no data (self-hosted speedtest-mini "
                           "endpoints http://127.0.0.1:18731/speedtest/)")
    assert up.status == "failed" and up.measurements == []
    assert (up.reason or "").startswith("transfer too short to be trusted: 90000 bytes in "
                                        "0.09 s (needs >= 1 s and >= 100000 bytes")


def test_failed_latency_check_and_an_error_mid_run() -> None:
    recorded = load_fixture("speedtest_results_selfhosted.json")
    down, up = run_with({**recorded, "ping": 1_200_001.5}, completed=("download",),
                        error="speedtest-cli upload failed: OSError: boom")
    assert down.status == "ok"
    assert "latency.txt check failed on at least one of its 3 GETs" in (down.reason or "")
    assert up.status == "failed" and up.reason == "speedtest-cli upload failed: OSError: boom"


@pytest.mark.parametrize(("given", "expected"), [
    ("http://10.0.0.5:8000", "http://10.0.0.5:8000/speedtest/upload.php"),
    ("https://c.example/base/", "https://c.example/base/speedtest/upload.php"),
    ("http://mini.example/speedtest/", "http://mini.example/speedtest/upload.php"),
    ("http://mini.example/speedtest/upload.php", "http://mini.example/speedtest/upload.php"),
])
def test_server_url_from_a_collector_or_a_mini_url(given: str, expected: str) -> None:
    assert mini_server_url(given) == expected


@needs_speedtest
def test_bad_server_url_fails_naming_it() -> None:
    [down] = measure("ftp://host/x", SMALL)
    assert down.status == "failed"
    assert down.reason == "speedtest server URL 'ftp://host/x' is not an http(s) URL with a host"


# --- not installed ---

def test_not_installed_is_skipped_with_the_reason(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "speedtest", None)  # import speedtest -> ImportError
    [result] = measure("http://127.0.0.1:1", SMALL)
    assert (result.status, result.reason) == ("skipped", NOT_INSTALLED)
    assert NOT_INSTALLED == "speedtest-cli is not installed (pip install classprobe[agent-extra])"
    assert main(["probe", "bandwidth", "--collector", "http://127.0.0.1:1", "--backend",
                 "speedtest", "--json"]) == 0
    [shown] = json.loads(capsys.readouterr().out)["results"]
    assert (shown["status"], shown["reason"]) == ("skipped", NOT_INSTALLED)


# --- against the real collector on 127.0.0.1 ---

class LiveCollector:
    """``classprobe collector serve`` in a subprocess; its uvicorn access log on file."""

    def __init__(self, tmp: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "collector.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "classprobe.cli", "collector", "serve", "--host",
                 "127.0.0.1", "--port", str(self.port)], cwd=ROOT, stdout=out,
                stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin",
                                               "CLASSPROBE_DATA_DIR": str(tmp)})
        deadline = time.monotonic() + 30
        while "Uvicorn running" not in self.log.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"collector did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def requests_since(self, offset: int, expected: int) -> Counter[str]:
        """``"GET /path"`` -> count, from the access log after ``offset`` (query dropped)."""
        deadline = time.monotonic() + 5
        while True:
            lines = re.findall(r'"([A-Z]+) (\S+) HTTP/1\.1"', self.log.read_text()[offset:])
            if len(lines) >= expected or time.monotonic() > deadline:
                return Counter(f"{verb} {urlsplit(path).path}" for verb, path in lines)
            time.sleep(0.05)

    def offset(self) -> int:
        return len(self.log.read_text())


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCollector]:
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("fastapi") is None:
        pytest.skip("the collector extra (fastapi, uvicorn) is not installed")
    server = LiveCollector(tmp_path_factory.mktemp("speedtest-collector"))
    try:
        yield server
    finally:
        server.proc.terminate()
        server.proc.wait(10)


@pytest.fixture
def looked_up(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every name resolved during the test; any name but 127.0.0.1 fails to resolve."""
    real = socket.getaddrinfo
    names: list[str] = []

    def only_loopback(host: Any, *args: Any, **kwargs: Any) -> Any:
        names.append(str(host))
        if host != "127.0.0.1":
            raise socket.gaierror(socket.EAI_NONAME, f"test: no lookups of {host!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", only_loopback)
    return names


@pytest.fixture
def proxy_trap(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """Environment proxies pointing at a listening socket nobody should connect to."""
    with socket.socket() as trap:
        trap.bind(("127.0.0.1", 0))
        trap.listen(16)
        proxy = f"http://127.0.0.1:{trap.getsockname()[1]}"
        for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
            monkeypatch.setenv(var, proxy)
        for var in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(var, raising=False)
        yield trap


@needs_speedtest
def test_self_hosted_sends_nothing_to_speedtest_net(live: LiveCollector, looked_up: list[str],
                                                    proxy_trap: socket.socket) -> None:
    start = live.offset()
    down, up = measure(live.url, SMALL)
    assert (down.status, up.status) == ("ok", "ok"), (down.reason, up.reason)
    # exactly the speedtest-mini requests, nothing else, and no name but 127.0.0.1 looked up
    assert live.requests_since(start, 11) == {
        "GET /speedtest/latency.txt": 3, "GET /speedtest/random350x350.jpg": 2,
        "GET /speedtest/random500x500.jpg": 2, "POST /speedtest/upload.php": 4}
    assert set(looked_up) == {"127.0.0.1"}
    assert select.select([proxy_trap], [], [], 0)[0] == []  # env proxies were not used
    assert down.target == f"{live.url}/speedtest/upload.php"
    assert values(down)["bytes"] == (2 * 2 * (350 * 350 + 500 * 500), DOWN)
    assert values(down)["streams"] == (3, DOWN)
    assert values(up)["bytes"] == (2 * (32768 + 524288), UP)
    assert values(up)["upload_mbps"][0] > 0
    assert "speedtest-cli 'ping'" in (down.reason or "")


@needs_speedtest
def test_self_hosted_uses_two_threads_each_way_by_default(live: LiveCollector) -> None:
    # passed explicitly, so speedtest-cli's raise of upload to 8 threads does not apply
    down, up = measure(live.url, replace(SMALL, streams=None))
    assert (values(down)["streams"], values(up)["streams"]) == ((2, DOWN), (2, UP))


@needs_speedtest
def test_unreachable_server_fails_fast_with_the_reason(closed_port: int,
                                                       looked_up: list[str]) -> None:
    began = time.monotonic()
    down, up = measure(f"http://127.0.0.1:{closed_port}", SMALL)
    assert time.monotonic() - began < 5
    reason = (f"speedtest-cli server selection failed: ConnectionError: none of its 3 GETs of "
              f"http://127.0.0.1:{closed_port}/speedtest/latency.txt got 'test=test' "
              "(refused, timed out or a wrong body)")
    assert (down.status, down.reason) == (up.status, up.reason) == ("failed", reason)


@needs_speedtest
def test_agent_config_dispatches_to_the_speedtest_backend(closed_port: int) -> None:
    cfg = AgentConfig(collector_url=f"http://127.0.0.1:{closed_port}",
                      bandwidth_backend="speedtest")
    down, up = bandwidth.run(cfg)
    assert down.target == f"http://127.0.0.1:{closed_port}/speedtest/upload.php"
    assert "speedtest-cli server selection failed" in (down.reason or "")
    with pytest.raises(ConfigError, match="key 'bandwidth_backend' has bad value 'iperf': "
                                          "expected one of http, speedtest"):
        load_config(Path("/nonexistent.toml"), {"CLASSPROBE_BANDWIDTH_BACKEND": "iperf"})
    assert load_config(Path("/nonexistent.toml"), {}).bandwidth_backend == "http"


# --- public mode: speedtest.net's two documents from fixtures, the test on 127.0.0.1 ---

class FakeResponse(io.BytesIO):
    def __init__(self, body: bytes, url: str) -> None:
        super().__init__(body)
        self.url, self.code, self.status, self.msg = url, 200, 200, "OK"
        self.headers = email.message.Message()

    def info(self) -> email.message.Message:
        return self.headers

    def geturl(self) -> str:
        return self.url

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


class SpeedtestNet(urllib.request.BaseHandler):
    """Answers speedtest.net URLs in speedtest-cli's opener; lets every other URL pass."""

    handler_order = 100  # before speedtest-cli's own HTTP(S) handlers

    def __init__(self, documents: dict[str, bytes] | None) -> None:
        self.documents = documents
        self.seen: list[str] = []

    def _answer(self, req: urllib.request.Request) -> FakeResponse | None:
        if req.host not in SPEEDTEST_NET:
            return None
        url = req.full_url
        self.seen.append(url.split("?")[0])
        if self.documents is None:
            raise urllib.error.URLError("no internet in this test")
        return FakeResponse(self.documents[urlsplit(url).path], url)

    http_open = https_open = _answer


def fake_speedtest_net(monkeypatch: pytest.MonkeyPatch,
                       documents: dict[str, bytes] | None) -> SpeedtestNet:
    handler = SpeedtestNet(documents)
    real = speedtest.build_opener

    def build_opener(*args: Any, **kwargs: Any) -> urllib.request.OpenerDirector:
        opener = real(*args, **kwargs)
        opener.add_handler(handler)
        return opener

    monkeypatch.setattr(speedtest, "build_opener", build_opener)
    return handler


@needs_speedtest
def test_public_flow_reads_config_and_picks_the_fastest_server(
        live: LiveCollector, closed_port: int, looked_up: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    servers = (FIXTURES / "speedtest_servers.xml").read_text().replace(
        "{port}", str(live.port)).replace("{closed}", str(closed_port))
    net = fake_speedtest_net(monkeypatch, {
        "/speedtest-config.php": (FIXTURES / "speedtest_config.xml").read_bytes(),
        "/speedtest-servers-static.php": servers.encode()})
    start = live.offset()
    down, up = measure(None, replace(SMALL, streams=None))
    assert (down.status, up.status) == ("ok", "ok"), (down.reason, up.reason)
    assert net.seen == ["https://www.speedtest.net/speedtest-config.php",
                        "https://www.speedtest.net/speedtest-servers-static.php"]
    assert set(looked_up) == {"127.0.0.1"}
    # the config's sizes and counts were used: 1 GET per side, 1 MiB + 7 MiB uploads
    sides = (350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000)
    got = live.requests_since(start, 15)
    assert got == {"GET /speedtest/latency.txt": 3, "POST /speedtest/upload.php": 2,
                   **{f"GET /speedtest/random{n}x{n}.jpg": 1 for n in sides}}
    assert values(down)["bytes"] == (sum(2 * n * n for n in sides), DOWN)
    assert values(up)["bytes"] == (1048576 + 7340032, UP)
    # threadcount 2 -> 4 download threads; the config's 2 upload threads become 8 once
    # the download read over 0.1 Mbit/s (speedtest-cli's own rule, kept in public mode)
    assert values(down)["streams"] == (4, DOWN)
    assert values(up)["streams"] == (8, UP)
    assert down.target == f"{live.url}/speedtest/upload.php"
    assert ("against public speedtest.net server 4242 (Stand-in ISP, Loopback, United "
            "Kingdom, 0 km away)") in (down.reason or "")


@needs_speedtest
def test_public_flow_without_internet_fails_with_the_reason(
        monkeypatch: pytest.MonkeyPatch, looked_up: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    net = fake_speedtest_net(monkeypatch, None)
    assert main(["probe", "bandwidth", "--backend", "speedtest", "--json"]) == 1
    captured = capsys.readouterr()
    assert "this contacts speedtest.net" in captured.err
    results = json.loads(captured.out)["results"]
    reason = ("speedtest-cli configuration failed: ConfigRetrievalError: "
              "<urlopen error no internet in this test>")
    assert [(r["status"], r["reason"], r["target"]) for r in results] == [
        ("failed", reason, None), ("failed", reason, None)]
    assert net.seen == ["https://www.speedtest.net/speedtest-config.php"]
    assert looked_up == []


# --- the CLI against a paced speedtest-mini stand-in ---

PER_CONNECTION_BPS = 16e6


class PacedMini(BaseHTTPRequestHandler):
    """speedtest-mini paths; each connection paced at PER_CONNECTION_BPS both ways."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: MiniServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _pace(self, began: float, done: int) -> None:
        time.sleep(max(0.0, began + done * 8 / PER_CONNECTION_BPS - time.perf_counter()))

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        path = urlsplit(self.path).path
        side = re.fullmatch(r"/speedtest/random(\d+)x\1\.jpg", path)
        if path == "/speedtest/latency.txt":
            return self._send(b"test=test\n")
        if side is None:
            return self.send_error(404)
        size = 2 * int(side.group(1)) ** 2
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        began, sent = time.perf_counter(), 0
        try:
            while sent < size:
                piece = min(65536, size - sent)
                self.wfile.write(b"\0" * piece)
                sent += piece
                self._pace(began, sent)
        except OSError:
            self.close_connection = True  # the client stopped reading at its time limit

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        left = int(self.headers["Content-Length"])
        began, got = time.perf_counter(), 0
        while left > 0:
            piece = self.rfile.read(min(65536, left))
            if not piece:
                break
            got, left = got + len(piece), left - len(piece)
            with self.server.lock:
                self.server.received += len(piece)
            self._pace(began, got)
        if left:
            self.close_connection = True
            return
        self._send(f"size={got}".encode())


class MiniServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), PacedMini)
        self.lock = threading.Lock()
        self.received = 0


@pytest.fixture
def mini() -> Iterator[MiniServer]:
    server = MiniServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@needs_speedtest
def test_cli_json_shape_and_the_upload_over_count(mini: MiniServer, looked_up: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{mini.server_address[1]}"
    assert main(["probe", "bandwidth", "--collector", url, "--backend", "speedtest",
                 "--seconds", "1.5", "--streams", "2", "--json"]) == 0
    down, up = json.loads(capsys.readouterr().out)["results"]
    for result in (down, up):
        assert (result["probe"], result["status"]) == ("bandwidth", "ok")
        assert result["target"] == f"{url}/speedtest/upload.php"
    assert [(m["metric"], m["unit"], m["method"]) for m in down["measurements"]] == [
        ("download_mbps", "Mbps", DOWN), ("bytes", "B", DOWN), ("duration_s", "s", DOWN),
        ("streams", "count", DOWN)]
    assert [(m["metric"], m["unit"], m["method"]) for m in up["measurements"]] == [
        ("upload_mbps", "Mbps", UP), ("bytes", "B", UP), ("duration_s", "s", UP),
        ("streams", "count", UP)]
    got = {m["metric"]: m["value"] for m in down["measurements"]}
    assert got["download_mbps"] == pytest.approx(2 * PER_CONNECTION_BPS / 1e6, rel=0.10)
    assert 1.5 <= got["duration_s"] < 2.5 and got["streams"] == 2
    sent = {m["metric"]: m["value"] for m in up["measurements"]}["bytes"]
    # speedtest-cli counts what it handed to the socket: never less than what arrived,
    # and more when the time limit cut requests whose bytes were still buffered
    assert sent >= mini.received > 0
    assert set(looked_up) == {"127.0.0.1"}


def test_cli_rejects_http_only_flags_and_a_missing_target(
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["probe", "bandwidth", "--collector", "http://x", "--backend", "speedtest",
              "--upload-url", "http://x/up"])
    assert ("--upload-url applies to the http backend only, not --backend speedtest"
            in capsys.readouterr().err)
    with pytest.raises(SystemExit):
        main(["probe", "bandwidth"])
    assert "one of --collector or --url is required" in capsys.readouterr().err

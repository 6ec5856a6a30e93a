"""speedtest-cli as a second bandwidth backend (optional ``agent-extra`` dependency).

Two modes, both driving the stock ``speedtest`` module (sivel/speedtest-cli 2.1.3):

- **self-hosted**: against a collector's speedtest-mini endpoints
  (``{collector}/speedtest/latency.txt``, ``random{N}x{N}.jpg``, ``upload.php``). A
  subclass of ``Speedtest`` replaces ``get_config`` (whose stock version GETs
  ``www.speedtest.net/speedtest-config.php`` from the *constructor*) and the server list is
  given, so **no request goes to speedtest.net** and no name but the server's is looked up
  (lab-facts §2 C). Env proxies are not used, as in the http backend.
- **public**: the normal speedtest.net flow (configuration, server list, closest server by
  latency), over HTTPS (plain HTTP gets 403 since 2022, anchors §4b). For the
  public-internet test, run by hand: ``classprobe probe bandwidth --backend speedtest``.

What the numbers are (``speedtest.py`` 2.1.3, lab-facts §2–3, anchors §4b):

- ``download_mbps``: bytes the client read / wall time of the whole phase (set-up and
  slow start included, nothing excluded). Within 0.5 % of plain TCP with tbf on the
  sender (lab-facts §3); through the lab's gateway tbf, see threads below.
- ``upload_mbps``: bytes **handed to the socket** / wall time, not bytes the server
  received: a request cut at the time limit counts what sat in the socket buffer. Off by
  ±5–8 % (101–104 % at 100 Mbit/s, 83.6 % in one 5 Mbit/s case). Its method says so:
  ``speedtest-cli_<version>_upload_bytes_sent``.
- ``bytes``, ``duration_s`` (= bytes × 8 / rate, the tool's own window), ``streams`` (its
  thread count: requests in flight, each on a fresh connection).
- Its "ping" is sum(3 fresh-connection GETs of latency.txt) / 6 ≈ one RTT including the
  TCP connect. No catalogue metric means that (``tcp_connect_ms`` is the handshake alone,
  ``http_ttfb_ms`` a warm request), so it stays in the reason text.
- Threads: speedtest.net's config asks for 8 download threads, and speedtest-cli raises
  the upload threads to 8 once a download read over 0.1 Mbit/s; each request is a fresh
  connection. Through a 20 Mbit/s tbf on the lab's gateway (real drops, 50 ms queue;
  truth 19.13) those 8 threads read 15.3–19.1 Mbit/s down (17 runs), 13.6–20.2 up (16);
  2 threads each way: download median 19.02 (43 runs, 41 within −4.7 %), upload
  −2.7…+3.8 % (21 runs). So self-hosted runs use 2 and 2 (passed explicitly, so the
  raise to 8 does not apply).
- It starts a request only when the *oldest* running one has ended (it joins its threads
  in order). A flow stalled by a loss at a full bottleneck queue (an RTO) holds back new
  requests and the link idles: 2 of those 43 downloads read −11 and −12 %. This only
  ever lowers the reading.
- It under-reads fast links (CPU-bound: ~2.5 Gbit/s at best here, 445 vs 904 Mbit/s on
  1 Gbit/s in sivel/speedtest-cli#730) and its byte budget is fixed (~413 MB down,
  ~151 MB up): a phase shorter than 1 s or 100 kB is ``failed``, too short to be trusted.
  Upload bodies are built when their request starts (``pre_allocate=False``), not all
  151 MB before the test.

``Speedtest()`` does network I/O in its constructor, so it is only ever built inside
:func:`drive`, after the module was imported lazily; result parsing is the pure
:func:`to_results` (tested on a recorded and a hand-made ``results.dict()``).
"""

from __future__ import annotations

import http.client
import math
import os.path
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal
from urllib.parse import urlsplit

from agent.config import AgentConfig
from agent.probes.results import ResultBuilder, value
from agent.wire import ProbeResult

NAME = "bandwidth"
NOT_INSTALLED = "speedtest-cli is not installed (pip install classprobe[agent-extra])"
Mode = Literal["self-hosted", "public"]
Phase = Literal["download", "upload"]
PHASES: tuple[Phase, ...] = ("download", "upload")
_KEYS: dict[Phase, tuple[str, str]] = {"download": ("download", "bytes_received"),
                                       "upload": ("upload", "bytes_sent")}
FAILED_GET_S = 3600
"""What speedtest-cli records for a latency.txt GET that failed."""
ALL_PINGS_FAILED_MS = 3 * FAILED_GET_S / 6 * 1000.0
SOME_PING_FAILED_MS = FAILED_GET_S / 6 * 1000.0
SELF_HOSTED_THREADS = 2
"""Threads per direction against the collector (see the module docstring)."""


@dataclass(frozen=True)
class SpeedtestOptions:
    seconds: float = 8.0
    """speedtest-cli's test length per direction (its time cap)."""
    streams: int | None = None
    """Threads per direction; None: self-hosted 2 and 2 (see the module docstring), public
    as speedtest.net's config says (and speedtest-cli's raise of upload to 8)."""
    timeout_s: float = 10.0
    download_sides: tuple[int, ...] = (350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000)
    download_count: int = 4
    upload_sizes: tuple[int, ...] = (524288, 1048576, 7340032)
    upload_count: int = 17
    trusted_window_s: float = 1.0
    trusted_bytes: int = 100_000


@dataclass(frozen=True)
class SpeedtestRun:
    """What one speedtest-cli run left: its ``results.dict()`` and how far it got."""

    mode: Mode
    version: str
    results: Mapping[str, Any]
    threads: Mapping[str, int]
    completed: tuple[Phase, ...]
    error: str | None = None


class BadResult(ValueError):
    """A field of ``results.dict()`` is missing or not a plausible number."""


def _number(results: Mapping[str, Any], key: str) -> float:
    raw = results.get(key)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) \
            or raw < 0:
        raise BadResult(f"speedtest-cli result {key!r} has bad value {raw!r}")
    return float(raw)


def server_label(mode: Mode, server: Mapping[str, Any]) -> str:
    url = str(server.get("url", "?"))
    if mode == "self-hosted":
        return f"self-hosted speedtest-mini endpoints {os.path.dirname(url)}/"
    where = ", ".join(str(server[k]) for k in ("sponsor", "name", "country") if server.get(k))
    distance = server.get("d")
    km = f", {distance:.0f} km away" if isinstance(distance, int | float) else ""
    return f"public speedtest.net server {server.get('id', '?')} ({where}{km}) at {url}"


def ping_note(results: Mapping[str, Any]) -> str:
    try:
        ping = _number(results, "ping")
    except BadResult as exc:
        return f"no latency figure: {exc}"
    if ping >= SOME_PING_FAILED_MS:
        return ("speedtest-cli's latency.txt check failed on at least one of its 3 GETs "
                f"(it counts {FAILED_GET_S} s for each): its ping {ping:g} ms is meaningless")
    return (f"speedtest-cli 'ping' {ping:g} ms = sum of 3 fresh-connection GETs of "
            "latency.txt / 6 (about one RTT including TCP connect); no catalogue metric "
            "means that, so it is not reported as one")


def _phase(phase: Phase, run: SpeedtestRun, label: str, opts: SpeedtestOptions,
           r: ResultBuilder) -> ProbeResult:
    rate_key, bytes_key = _KEYS[phase]
    try:
        bps = _number(run.results, rate_key)
        nbytes = int(_number(run.results, bytes_key))
    except BadResult as exc:
        return r.failed(f"{label}: {exc}")
    if nbytes == 0 or bps == 0:
        more = f"; then: {run.error}" if run.error else ""
        return r.failed(f"speedtest-cli {phase} moved no data ({label}){more}")
    duration = nbytes * 8 / bps
    if duration < opts.trusted_window_s or nbytes < opts.trusted_bytes:
        return r.failed(f"transfer too short to be trusted: {nbytes} bytes in {duration:.2f} s "
                        f"(needs >= {opts.trusted_window_s:g} s and >= {opts.trusted_bytes} "
                        f"bytes; speedtest-cli's byte budget ran out first) ({label})")
    counted = "download" if phase == "download" else "upload_bytes_sent"
    method = f"speedtest-cli_{run.version}_{counted}"
    metric = "download_mbps" if phase == "download" else "upload_mbps"
    r.add(value(metric, method, round(bps / 1e6, 3)), value("bytes", method, nbytes),
          value("duration_s", method, round(duration, 3)))
    if phase in run.threads:
        r.add(value("streams", method, run.threads[phase]))
    r.note(f"speedtest-cli {run.version} against {label}")
    if phase == "download":
        r.note("rate = bytes read / the whole phase (connection set-up and slow start "
               "included, no warm-up excluded)")
        r.note(ping_note(run.results))
    else:
        r.note("upload counts bytes handed to the socket, not bytes the server received: "
               "expect +-5-8 % against the true goodput")
    return r.ok()


def to_results(run: SpeedtestRun, opts: SpeedtestOptions) -> list[ProbeResult]:
    """One result per direction from a run (pure apart from the clock)."""
    server = run.results.get("server")
    server = server if isinstance(server, Mapping) else {}
    target = str(server["url"]) if server.get("url") else None
    label = server_label(run.mode, server) if target else f"{run.mode} speedtest-cli test"
    out = []
    for phase in PHASES:
        r = ResultBuilder(NAME, target=target)
        if phase in run.completed:
            out.append(_phase(phase, run, label, opts, r))
        else:
            out.append(r.failed(run.error or f"speedtest-cli {phase} did not run"))
    return out


# --- the adapter: everything below touches speedtest-cli and the network ---

def load_module() -> ModuleType | str:
    """The ``speedtest`` module, or why it cannot be used."""
    try:
        import speedtest
    except ImportError:
        return NOT_INSTALLED
    if not hasattr(speedtest, "Speedtest"):
        return (f"the installed 'speedtest' module ({speedtest.__file__}) is not "
                "speedtest-cli; " + NOT_INSTALLED)
    return speedtest


def mini_server_url(url: str) -> str:
    """speedtest-cli's server URL (``.../speedtest/upload.php``) from a collector base URL
    or a speedtest-mini URL (``.../speedtest/`` or ``.../upload.php``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"speedtest server URL {url!r} is not an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise ValueError(f"speedtest server URL {url!r} must not have a query or fragment")
    path = parts.path.rstrip("/")
    if not path.endswith("/upload.php"):
        path += "/upload.php" if path.endswith("/speedtest") else "/speedtest/upload.php"
    return f"{parts.scheme}://{parts.netloc}{path}"


def local_config(opts: SpeedtestOptions) -> dict[str, Any]:
    """What ``get_config`` would have read from speedtest.net (its upload ratio 5)."""
    upload_max = opts.upload_count * len(opts.upload_sizes)
    return {
        "client": {"ip": "", "lat": "0", "lon": "0", "isp": "", "country": ""},
        "ignore_servers": [],
        "sizes": {"upload": list(opts.upload_sizes), "download": list(opts.download_sides)},
        "counts": {"upload": opts.upload_count, "download": opts.download_count},
        "threads": {"upload": SELF_HOSTED_THREADS, "download": SELF_HOSTED_THREADS},
        "length": {"upload": opts.seconds, "download": opts.seconds},
        "upload_max": upload_max,
    }


def direct_opener(sp: ModuleType, timeout_s: float) -> urllib.request.OpenerDirector:
    """speedtest-cli's opener (its handlers and User-Agent) without environment proxies."""
    opener = urllib.request.OpenerDirector()
    opener.addheaders = [("User-agent", sp.build_user_agent())]
    for handler in (urllib.request.ProxyHandler({}), sp.SpeedtestHTTPHandler(timeout=timeout_s),
                    sp.SpeedtestHTTPSHandler(timeout=timeout_s),
                    urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPRedirectHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def self_hosted_factory(sp: ModuleType, opts: SpeedtestOptions) -> Callable[[], Any]:
    """A constructor of a ``Speedtest`` whose ``get_config`` does no I/O."""

    class LocalSpeedtest(sp.Speedtest):  # type: ignore[name-defined,misc]
        def get_config(self) -> dict[str, Any]:
            self.config.update(local_config(opts))
            self.lat_lon = (0.0, 0.0)
            config: dict[str, Any] = self.config
            return config

    def make() -> Any:
        st = LocalSpeedtest(timeout=opts.timeout_s)
        st._opener = st.results._opener = direct_opener(sp, opts.timeout_s)
        return st

    return make


def public_factory(sp: ModuleType, opts: SpeedtestOptions) -> Callable[[], Any]:
    """The stock ``Speedtest`` over HTTPS: its constructor fetches speedtest.net's config."""
    length = {"upload": opts.seconds, "download": opts.seconds}
    return lambda: sp.Speedtest(timeout=opts.timeout_s, secure=True, config={"length": length})


def drive(sp: ModuleType, make: Callable[[], Any], mode: Mode, streams: int | None,
          servers: list[dict[str, Any]] | None) -> SpeedtestRun:
    """Build the client, pick the server (given, or speedtest.net's closest), run both
    directions with ``streams`` threads (None: its config's); stop at the first error
    and say in which step."""
    errors: tuple[type[BaseException], ...] = (
        sp.SpeedtestException, OSError, http.client.HTTPException, KeyError, ValueError)
    step, st, error = "configuration", None, None
    threads: dict[str, int] = {}
    completed: list[Phase] = []
    try:
        st = make()
        if servers is None:
            step = "server list"
            st.get_servers()
        step = "server selection"
        st.get_best_server(servers)
        if st.results.ping >= ALL_PINGS_FAILED_MS:
            url = os.path.dirname(str(st.results.server.get("url", "?")))
            raise ConnectionError(f"none of its 3 GETs of {url}/latency.txt got 'test=test' "
                                  "(refused, timed out or a wrong body)")
        for step in PHASES:
            threads[step] = streams or int(st.config["threads"][step])
            if step == "download":
                st.download(threads=streams)
            else:
                st.upload(pre_allocate=False, threads=streams)
            completed.append(step)
    except errors as exc:
        error = f"speedtest-cli {step} failed: {type(exc).__name__}: {exc}"
    results = st.results.dict() if st is not None else {}
    return SpeedtestRun(mode, str(getattr(sp, "__version__", "unknown")), results, threads,
                        tuple(completed), error)


def measure(url: str | None, opts: SpeedtestOptions) -> list[ProbeResult]:
    """speedtest-cli against ``url`` (a collector or speedtest-mini URL: self-hosted), or
    speedtest.net when ``url`` is None (public)."""
    sp = load_module()
    if isinstance(sp, str):
        return [ResultBuilder(NAME, target=url).skipped(sp)]
    if url is None:
        run = drive(sp, public_factory(sp, opts), "public", opts.streams, None)
    else:
        try:
            server_url = mini_server_url(url)
        except ValueError as exc:
            return [ResultBuilder(NAME, target=url).failed(str(exc))]
        server = {"url": server_url, "id": 0, "sponsor": "classprobe", "d": 0,
                  "name": urlsplit(server_url).netloc}
        run = drive(sp, self_hosted_factory(sp, opts), "self-hosted",
                    opts.streams or SELF_HOSTED_THREADS, [server])
    return to_results(run, opts)


def run(cfg: AgentConfig) -> list[ProbeResult]:
    """The agent's bandwidth probe with ``bandwidth_backend = "speedtest"``: self-hosted,
    against its collector (the public test is run by hand, never on a schedule)."""
    opts = SpeedtestOptions(seconds=cfg.bandwidth_seconds, timeout_s=max(cfg.timeout_s, 5.0))
    return measure(cfg.collector_url, opts)

"""Bandwidth probe: multi-stream HTTP download and upload goodput.

Against the collector (``/speed/download?bytes=N``, ``/speed/upload`` answering
``{"bytes": n}``) or any URL that serves a large body (download) / accepts a POST
(upload). Each of N streams has its own httpx connection and sends requests one after
another; request sizes adapt so that one request takes ~0.5 s. A sampler thread records
the total byte count every 100 ms into a timeline; warm-up, window, stop rule and
goodput maths are in :mod:`agent.probes.goodput`. The transfer stops when the estimate
is stable, after ``seconds``, or at ``max_bytes``.

- ``download_mbps``: body bytes received in the measuring window / its duration.
- ``upload_mbps``: bytes **the server confirmed** (``{"bytes": n}``; for a URL that does
  not answer so, the size of each POST it completed with a 2xx), summed per stream
  between request completions (:func:`agent.probes.goodput.confirmed_rate`). Bytes
  handed to the socket only decide warm-up and when to stop: they run ahead of delivery
  by the socket buffer, which is how speedtest-cli over-reads uploads.
- ``loaded_latency_ms`` (p50, max): TCP connect time to the server every 200 ms during
  the measuring window, on connections of its own.
- ``nic_agreement_pct``: 100 × bytes the test counted over the whole transfer / the
  change in the NIC counters (``psutil.net_io_counters``, summed over every interface:
  received bytes for download, sent for upload). Ethernet headers make ~96 % normal;
  over loopback, where each packet is counted once as sent and once as received, ~99 %;
  much lower means other traffic shared the interface during the test.

A transfer whose measuring window is under 1 s or 100 kB is ``failed``: "transfer too
short to be trusted".
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agent.config import AgentConfig
from agent.probes import goodput
from agent.probes.net import describe_httpx, ssl_context
from agent.probes.results import ResultBuilder, summary, value

if TYPE_CHECKING:
    import httpx

from agent.wire import ProbeResult

log = logging.getLogger(__name__)

NAME = "bandwidth"
PIECE = 64 * 1024
_RANDOM = os.urandom(PIECE)  # incompressible upload payload, made once (64 KiB)


@dataclass(frozen=True)
class BandwidthOptions:
    seconds: float = 8.0
    streams: int = 4
    max_bytes: int = 500_000_000
    timeout_s: float = 10.0
    ca_bundle: str = ""
    sample_interval_s: float = 0.1
    warmup_min_s: float = 1.0
    min_window_s: float = 2.0
    stable_span_s: float = 1.0
    stable_tolerance_pct: float = 2.0
    trusted_window_s: float = 1.0
    trusted_bytes: int = 100_000
    latency_interval_s: float = 0.2


@dataclass
class Stream:
    counted: int = 0
    """Bytes received (download) or handed to the socket (upload)."""
    completions: list[goodput.Completion] = field(default_factory=list)
    unconfirmed: int = 0
    """Uploads the server completed without saying ``{"bytes": n}``."""
    error: str | None = None


@dataclass
class Transfer:
    timeline: list[tuple[float, int]]
    streams: list[Stream]
    rtts: list[tuple[float, float]]
    stop_reason: str
    nic_delta: int | None


def _nic_bytes(direction: str) -> int | None:
    import psutil

    counters = psutil.net_io_counters()
    if counters is None:
        return None
    return int(counters.bytes_recv if direction == "download" else counters.bytes_sent)


def _sample_rtts(host: str, port: int, start: float, stop: threading.Event,
                 out: list[tuple[float, float]], interval_s: float, timeout_s: float) -> None:
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError:
        return
    while not stop.wait(interval_s):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout_s)
        try:
            began = time.perf_counter()
            sock.connect(sockaddr)
            out.append((began - start, (time.perf_counter() - began) * 1000.0))
        except OSError:
            continue  # a connect that fails under load has no RTT to report
        finally:
            sock.close()


Worker = Callable[["httpx.Client", Stream, threading.Event, float], None]


def estimate(direction: str, timeline: list[tuple[float, int]], streams: list[Stream],
             start_s: float) -> float | None:
    """The current goodput estimate over the window starting at ``start_s``."""
    if direction == "download":
        return goodput.running_mbps(timeline, start_s)
    rate = goodput.confirmed_rate([s.completions for s in streams if not s.error], start_s)
    return None if isinstance(rate, str) else rate[0]


def run_transfer(url: str, direction: str, worker: Worker, opts: BandwidthOptions) -> Transfer:
    """Run ``opts.streams`` workers against ``url`` and sample the byte count."""
    import httpx

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    verify = ssl_context(opts.ca_bundle)
    streams = [Stream() for _ in range(opts.streams)]
    stop = threading.Event()
    rtts: list[tuple[float, float]] = []
    nic_before = _nic_bytes(direction)
    start = time.perf_counter()

    def stream_main(stream: Stream) -> None:
        # TCP_NODELAY: the tail of each request must not wait for a delayed ACK.
        transport = httpx.HTTPTransport(
            verify=verify, socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        try:
            with httpx.Client(transport=transport, timeout=opts.timeout_s, trust_env=False,
                              headers={"Accept-Encoding": "identity"}) as client:
                worker(client, stream, stop, start)
        except Exception as exc:  # a stream's bug ends that stream, with the reason
            log.exception("%s stream crashed", direction)
            stream.error = f"stream crashed: {type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=stream_main, args=(s,), daemon=True,
                                name=f"{direction} stream {i + 1}")
               for i, s in enumerate(streams)]
    threads.append(threading.Thread(
        target=_sample_rtts, daemon=True, name="loaded latency",
        args=(parts.hostname or "", port, start, stop, rtts, opts.latency_interval_s, 2.0)))
    for thread in threads:
        thread.start()
    timeline: list[tuple[float, int]] = [(0.0, 0)]
    history: list[tuple[float, float]] = []
    stop_reason = "all streams ended"
    while any(t.is_alive() for t in threads[:-1]):
        time.sleep(opts.sample_interval_s)
        now = time.perf_counter() - start
        total = sum(s.counted for s in streams)
        timeline.append((now, total))
        warm = goodput.warmup_end(timeline, opts.warmup_min_s)
        if warm is not None and now - warm >= opts.min_window_s - opts.stable_span_s:
            current = estimate(direction, timeline, streams, warm)
            if current is not None:
                history.append((now, current))
            if now - warm >= opts.min_window_s and goodput.settled(
                    history, opts.stable_span_s, opts.stable_tolerance_pct):
                stop_reason = (f"stable (within {opts.stable_tolerance_pct:g} % over "
                               f"{opts.stable_span_s:g} s)")
                break
        if total >= opts.max_bytes:
            stop_reason = f"byte cap {opts.max_bytes} reached"
            break
        if now >= opts.seconds:
            stop_reason = f"time cap {opts.seconds:g} s reached"
            break
    stop.set()
    for thread in threads:
        thread.join(timeout=opts.timeout_s)
    nic_after = _nic_bytes(direction)
    nic_delta = None if nic_before is None or nic_after is None else nic_after - nic_before
    return Transfer(timeline, streams, rtts, stop_reason, nic_delta)


def _http_error(exc: BaseException, opts: BandwidthOptions) -> str:
    return describe_httpx(exc, opts.timeout_s)


def download_worker(url: str, sized: bool, opts: BandwidthOptions) -> Worker:
    """GET ``url`` (``?bytes=N`` appended when ``sized``) again and again."""
    import httpx

    def work(client: httpx.Client, stream: Stream, stop: threading.Event, start: float) -> None:
        size = 256 * 1024
        while not stop.is_set():
            began = time.perf_counter()
            params = {"bytes": str(size)} if sized else None
            try:
                with client.stream("GET", url, params=params) as response:
                    if response.status_code != 200:
                        stream.error = f"HTTP {response.status_code} from {url}"
                        return
                    for piece in response.iter_raw(PIECE):
                        stream.counted += len(piece)
                        if stop.is_set():
                            return
            except httpx.HTTPError as exc:
                if not stop.is_set():
                    stream.error = _http_error(exc, opts)
                return
            size = goodput.next_chunk(size, time.perf_counter() - began,
                                      hi=max(PIECE, opts.max_bytes // opts.streams))

    return work


class _Aborted(Exception):  # noqa: N818 - control flow: the transfer was stopped
    """Raised from an upload body when the transfer stops; aborts the request."""


def _body(size: int, stream: Stream, stop: threading.Event) -> Iterator[bytes]:
    left = size
    while left > 0:
        if stop.is_set():
            raise _Aborted  # the server never confirms this request: it does not count
        piece = _RANDOM[: min(PIECE, left)]
        stream.counted += len(piece)
        left -= len(piece)
        yield piece


def upload_worker(url: str, opts: BandwidthOptions) -> Worker:
    """POST bodies to ``url`` again and again; record what the server confirms."""
    import httpx

    def work(client: httpx.Client, stream: Stream, stop: threading.Event, start: float) -> None:
        size = 256 * 1024
        while not stop.is_set():
            began = time.perf_counter()
            try:
                response = client.post(url, content=_body(size, stream, stop),
                                        headers={"Content-Length": str(size),
                                                 "Content-Type": "application/octet-stream"})
            except _Aborted:
                return
            except httpx.HTTPError as exc:
                if not stop.is_set():
                    stream.error = _http_error(exc, opts)
                return
            done = time.perf_counter()
            if not 200 <= response.status_code < 300:
                stream.error = f"HTTP {response.status_code} from {url}"
                return
            confirmed = _confirmed(response)
            if confirmed is None:
                stream.unconfirmed += 1
            stream.completions.append(goodput.Completion(
                done - start, size if confirmed is None else confirmed))
            size = goodput.next_chunk(size, done - began,
                                      hi=max(PIECE, opts.max_bytes // opts.streams))

    return work


def _confirmed(response: httpx.Response) -> int | None:
    """The server's ``{"bytes": n}``; None when it does not say."""
    try:
        body: Any = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("bytes"), int):
        return int(body["bytes"])
    return None


def summarise(direction: str, url: str, transfer: Transfer, opts: BandwidthOptions,
              method: str, r: ResultBuilder) -> ProbeResult:
    """Turn a finished transfer into the result (pure apart from the clock)."""
    errors = [s.error for s in transfer.streams if s.error]
    counted = sum(s.counted for s in transfer.streams)
    if errors and (counted == 0 or len(errors) == len(transfer.streams)):
        return r.failed(f"{direction} from {url} failed: {errors[0]}")
    warm = goodput.warmup_end(transfer.timeline, opts.warmup_min_s)
    if warm is None:
        warm = opts.warmup_min_s
        r.note(f"the rate was still rising at the end ({transfer.stop_reason}): "
               "the estimate may be low")
    w = goodput.window(transfer.timeline, warm)
    short = ("transfer too short to be trusted: {got} after a {warm:.1f} s warm-up "
             f"(needs >= {opts.trusted_window_s:g} s and >= {opts.trusted_bytes} bytes; "
             f"stopped: {transfer.stop_reason})")
    if w is None or w.duration_s < opts.trusted_window_s or w.bytes < opts.trusted_bytes:
        got = "nothing" if w is None else f"{w.bytes} bytes in {w.duration_s:.2f} s"
        return r.failed(short.format(got=got, warm=warm))
    if direction == "download":
        rate, nbytes, duration = w.mbps, w.bytes, w.duration_s
    else:
        healthy = [s.completions for s in transfer.streams if not s.error]
        confirmed = goodput.confirmed_rate(healthy, warm)
        if isinstance(confirmed, str):
            return r.failed(short.format(got=confirmed, warm=warm))
        rate, nbytes, duration = confirmed
        if duration < opts.trusted_window_s:
            return r.failed(short.format(got=f"{nbytes} confirmed bytes in {duration:.2f} s",
                                         warm=warm))
    metric = "download_mbps" if direction == "download" else "upload_mbps"
    r.add(value(metric, method, round(rate, 3)))
    r.add(value("bytes", method, nbytes), value("duration_s", method, round(duration, 3)),
          value("streams", method, opts.streams))
    loaded = [ms for t, ms in transfer.rtts if w.start_s <= t <= w.end_s]
    if loaded:
        stats = summary("loaded_latency_ms", "tcp_connect_during_transfer", loaded)
        r.extend([m for m in stats if m.stat in ("p50", "max")])
    else:
        r.note("loaded_latency_ms not measured: no TCP connect completed during the window")
    if transfer.nic_delta:
        r.add(value("nic_agreement_pct", "psutil.net_io_counters",
                    round(100.0 * counted / transfer.nic_delta, 2)))
    else:
        r.note("nic_agreement_pct not measured: the NIC counters did not move")
    if errors:
        r.note(f"{len(errors)} of {opts.streams} streams stopped early: {errors[0]}")
    if any(s.unconfirmed for s in transfer.streams):
        r.note("the server did not confirm byte counts: each completed POST counts its size")
    r.note(f"warm-up {warm:.1f} s excluded; stopped: {transfer.stop_reason}")
    return r.ok()


def measure_download(url: str, opts: BandwidthOptions, sized: bool = True) -> ProbeResult:
    r = ResultBuilder(NAME, target=url)
    transfer = run_transfer(url, "download", download_worker(url, sized, opts), opts)
    method = f"http_get_{opts.streams}_streams"
    return summarise("download", url, transfer, opts, method, r)


def measure_upload(url: str, opts: BandwidthOptions) -> ProbeResult:
    r = ResultBuilder(NAME, target=url)
    transfer = run_transfer(url, "upload", upload_worker(url, opts), opts)
    how = "completed" if any(s.unconfirmed for s in transfer.streams) else "server_confirmed"
    method = f"http_post_{opts.streams}_streams_{how}"
    return summarise("upload", url, transfer, opts, method, r)


def speed_urls(collector_url: str) -> tuple[str, str]:
    base = collector_url.rstrip("/")
    return base + "/speed/download", base + "/speed/upload"


def options_of(cfg: AgentConfig) -> BandwidthOptions:
    return BandwidthOptions(seconds=cfg.bandwidth_seconds, streams=cfg.bandwidth_streams,
                            max_bytes=cfg.bandwidth_max_bytes,
                            timeout_s=max(cfg.timeout_s, 5.0), ca_bundle=cfg.ca_bundle)


def run(cfg: AgentConfig) -> list[ProbeResult]:
    if not cfg.bandwidth:
        return [ResultBuilder(NAME).skipped("bandwidth probe disabled in the configuration")]
    if not cfg.collector_url:
        return [ResultBuilder(NAME).skipped("no collector to test against (not enrolled)")]
    down, up = speed_urls(cfg.collector_url)
    opts = options_of(cfg)
    return [measure_download(down, opts), measure_upload(up, opts)]

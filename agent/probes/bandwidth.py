"""Bandwidth probe: multi-stream HTTP download and upload goodput.

Against the collector (``/speed/download?bytes=N``, ``/speed/upload`` answering
``{"bytes": n}``) or any URL that serves a large body (download) / accepts a POST
(upload). Each of N streams has its own httpx connection and sends requests one after
another, sized to last until the time cap once the stream has ramped up (~0.5 s each
where only completed requests can be counted; :func:`agent.probes.bandwidth_streams.
next_size`), and stops at once when the transfer stops. A sampler thread records
the total byte count every 100 ms into a timeline; warm-up, window, stop rule and
goodput maths are in :mod:`agent.probes.goodput`. The transfer stops when the estimate
is stable, after ``seconds``, or at ``max_bytes``.

- ``download_mbps``: the least-squares slope of the body bytes received over the
  measuring window (:mod:`agent.probes.goodput`); ``bytes`` and ``duration_s`` are the
  window's. Bytes are counted as the socket hands them over (no re-chunking), so the
  count lags delivery by at most one socket read.
- ``upload_mbps``: bytes that reached the server, never bytes merely handed to the
  socket (those run ahead of delivery by the socket buffer: how speedtest-cli over-reads
  uploads). Where the kernel says what the server acknowledged (Linux ``TCP_INFO``,
  :mod:`agent.probes.tcpinfo`), that count is sampled into a timeline treated like a
  download's: method ``..._tcp_acked``. Elsewhere, the bytes the server confirmed
  (``{"bytes": n}``, or each 2xx POST's size) per stream between request completions,
  summed over the window all streams cover (:func:`agent.probes.goodput.confirmed_rate`):
  ``..._server_confirmed`` (or ``..._completed``).
- ``loaded_latency_ms`` (p50, max): TCP connect time to the server every 200 ms during
  the measuring window, on connections of its own.
- ``nic_agreement_pct``: 100 × bytes the test counted over the whole transfer (upload
  with ``TCP_INFO``: the bytes acknowledged) / the change in the NIC counters
  (``psutil.net_io_counters``, summed over every interface: received bytes for download,
  sent for upload). Ethernet headers make ~96 % normal;
  over loopback, where each packet is counted once as sent and once as received, ~99 %;
  much lower means other traffic shared the interface during the test.

A transfer whose measuring window is under 1 s or 100 kB is ``failed``: "transfer too
short to be trusted".
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from agent.config import AgentConfig
from agent.probes import goodput
from agent.probes.bandwidth_streams import (  # noqa: F401 (part of this module's API)
    PIECE,
    Stream,
    Worker,
    download_worker,
    follow_acked,
    upload_worker,
)
from agent.probes.net import ssl_context
from agent.probes.results import ResultBuilder, summary, value
from agent.wire import ProbeResult

log = logging.getLogger(__name__)

NAME = "bandwidth"


@dataclass(frozen=True)
class BandwidthOptions:
    seconds: float = 8.0
    streams: int = 4
    max_bytes: int = 500_000_000
    timeout_s: float = 10.0
    ca_bundle: str = ""
    sample_interval_s: float = 0.1
    tcp_acked: bool = True
    """Upload: count what the server's TCP acknowledged where the OS says (Linux)."""
    warmup_min_s: float = 1.5
    """In the lab at 5 Mbit/s, 0.5 s more than 1 s took a +1 % bias away: data held in
    the receiver's reassembly queue during TCP's start-up overshoot drains until ~1.5 s."""
    min_window_s: float = 2.5
    window_rtts: float = 50.0
    """... and at least this many loaded RTTs (:func:`agent.probes.goodput.min_window`)."""
    stable_span_s: float = 1.0
    stable_tolerance_pct: float = 2.0
    trusted_window_s: float = 1.0
    trusted_bytes: int = 100_000
    latency_interval_s: float = 0.2


@dataclass
class Transfer:
    timeline: list[tuple[float, int]]
    streams: list[Stream]
    rtts: list[tuple[float, float]]
    stop_reason: str
    nic_delta: int | None
    acked: list[tuple[float, int]] | None = None
    """Upload: the timeline of acknowledged bytes, when every stream's count was known."""
    acked_total: int | None = None
    """Upload: acknowledged bytes once every stream had ended (after the timeline)."""


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


def estimate(direction: str, timeline: list[tuple[float, int]], streams: list[Stream],
             start_s: float, acked: list[tuple[float, int]] | None = None) -> float | None:
    """The current goodput estimate over the window starting at ``start_s``."""
    if direction == "download":
        return goodput.running_mbps(timeline, start_s)
    if acked is not None:
        return goodput.running_mbps(acked, start_s)
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
    acked: list[tuple[float, int]] | None = \
        [(0.0, 0)] if direction == "upload" and opts.tcp_acked else None
    history: list[tuple[float, float]] = []
    stop_reason = "all streams ended"
    while any(t.is_alive() for t in threads[:-1]):
        time.sleep(opts.sample_interval_s)
        now = time.perf_counter() - start
        total = sum(s.counted for s in streams)
        timeline.append((now, total))
        if acked is not None:
            if any(s.acked_missing for s in streams):
                acked = None
            else:
                acked.append((now, sum(s.acked.total() for s in streams)))
        warm = goodput.warmup_end(acked or timeline, opts.warmup_min_s)
        least = goodput.min_window(opts.min_window_s, [ms for _, ms in rtts],
                                   opts.window_rtts)
        if warm is not None and now - warm >= least - opts.stable_span_s:
            current = estimate(direction, timeline, streams, warm, acked)
            if current is not None:
                history.append((now, current))
            if now - warm >= least and goodput.settled(
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
    if acked is not None and not all(s.acked.following and not s.acked_missing
                                     for s in streams):
        acked = None
    acked_total = None if acked is None else sum(s.acked.total() for s in streams)
    return Transfer(timeline, streams, rtts, stop_reason, nic_delta, acked, acked_total)


def summarise(direction: str, url: str, transfer: Transfer, opts: BandwidthOptions,
              method: str, r: ResultBuilder) -> ProbeResult:
    """Turn a finished transfer into the result (pure apart from the clock)."""
    errors = [s.error for s in transfer.streams if s.error]
    counted = sum(s.counted for s in transfer.streams)
    if errors and (counted == 0 or len(errors) == len(transfer.streams)):
        return r.failed(f"{direction} from {url} failed: {errors[0]}")
    delivered = transfer.acked or transfer.timeline
    warm = goodput.warmup_end(delivered, opts.warmup_min_s)
    if warm is None:
        warm = opts.warmup_min_s
        r.note(f"the rate was still rising at the end ({transfer.stop_reason}): "
               "the estimate may be low")
    w = goodput.window(delivered, warm)
    short = ("transfer too short to be trusted: {got} after a {warm:.1f} s warm-up "
             f"(needs >= {opts.trusted_window_s:g} s and >= {opts.trusted_bytes} bytes; "
             f"stopped: {transfer.stop_reason})")
    if w is None or w.duration_s < opts.trusted_window_s or w.bytes < opts.trusted_bytes:
        got = "nothing" if w is None else f"{w.bytes} bytes in {w.duration_s:.2f} s"
        return r.failed(short.format(got=got, warm=warm))
    if direction == "download" or transfer.acked:
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
    own = counted if transfer.acked_total is None else transfer.acked_total
    if transfer.nic_delta:
        r.add(value("nic_agreement_pct", "psutil.net_io_counters",
                    round(100.0 * own / transfer.nic_delta, 2)))
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
    if transfer.acked:
        how = "tcp_acked"
    elif any(s.unconfirmed for s in transfer.streams):
        how = "completed"
    else:
        how = "server_confirmed"
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
    if cfg.bandwidth_backend == "speedtest":
        from agent.probes import speedtest_backend

        return speedtest_backend.run(cfg)
    down, up = speed_urls(cfg.collector_url)
    opts = options_of(cfg)
    return [measure_download(down, opts), measure_upload(up, opts)]

"""The bandwidth probe's streams: the per-connection download and upload loops.

Each of the probe's N streams runs one of these workers on its own httpx connection,
sending requests one after another until the transfer is stopped; what a stream counted
goes into its :class:`Stream` (see :mod:`agent.probes.bandwidth` for the maths).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.probes import goodput
from agent.probes.net import describe_httpx
from agent.probes.tcpinfo import AckedCounter

if TYPE_CHECKING:
    import httpx

    from agent.probes.bandwidth import BandwidthOptions

PIECE = 64 * 1024
_RANDOM = os.urandom(PIECE)  # incompressible upload payload, made once (64 KiB)
REQUEST_S = 0.5
"""Request length where a stream's bytes are only known when a request completes."""


@dataclass
class Stream:
    counted: int = 0
    """Bytes received (download) or handed to the socket (upload)."""
    completions: list[goodput.Completion] = field(default_factory=list)
    unconfirmed: int = 0
    """Uploads the server completed without saying ``{"bytes": n}``."""
    error: str | None = None
    acked: AckedCounter = field(default_factory=AckedCounter)
    """Upload: bytes the server's TCP acknowledged, over this stream's connections."""
    acked_missing: bool = False
    """Upload: a connection of this stream gave no acknowledged-byte count."""


Worker = Callable[["httpx.Client", Stream, threading.Event, float], None]


def _http_error(exc: BaseException, opts: BandwidthOptions) -> str:
    return describe_httpx(exc, opts.timeout_s)


def next_size(size: int, began: float, start: float, opts: BandwidthOptions,
              fill: bool) -> int:
    """The next request's size, from how long the last one (``size`` bytes) took.

    ``fill``: sized to last until the time cap (at most 4× the last, so a first request
    that rode an empty queue cannot overshoot), so that once a stream has ramped up it
    runs one long request. Each new request costs the stream a round trip with nothing
    in flight: over a 40 ms RTT at 20 Mbit/s, 0.5 s requests left the link idle 4–9 % of
    the time (seen on the shaper's own counters). Otherwise ~0.5 s (``REQUEST_S``).
    """
    now = time.perf_counter()
    target = max(REQUEST_S, opts.seconds - (now - start)) if fill else REQUEST_S
    return goodput.next_chunk(size, now - began, target_s=target,
                              hi=max(PIECE, opts.max_bytes // opts.streams))


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
                    # No chunk size: iter_raw(n) would hold bytes back until n had
                    # arrived, and the count would lag delivery by up to n per stream.
                    for piece in response.iter_raw():
                        stream.counted += len(piece)
                        if stop.is_set():
                            return
            except httpx.HTTPError as exc:
                if not stop.is_set():
                    stream.error = _http_error(exc, opts)
                return
            size = next_size(size, began, start, opts, fill=sized)

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


def follow_acked(stream: Stream) -> Callable[[str, Any], None]:
    """An httpx ``trace`` hook: each new connection's socket joins ``stream.acked``."""

    def trace(event: str, info: Any) -> None:
        if event == "http11.receive_response_headers.complete":
            stream.acked.total()  # the final count, before a closing server ends the socket
        elif event == "connection.connect_tcp.complete":
            sock = info["return_value"].get_extra_info("socket")
            if sock is None or not stream.acked.add(sock):
                stream.acked_missing = True
        elif event == "connection.start_tls.complete":
            sock = info["return_value"].get_extra_info("socket")
            if sock is None:
                stream.acked_missing = True
            else:
                stream.acked.rewrapped(sock)

    return trace


def upload_worker(url: str, opts: BandwidthOptions) -> Worker:
    """POST bodies to ``url`` again and again; record what the server confirms."""
    import httpx

    def work(client: httpx.Client, stream: Stream, stop: threading.Event, start: float) -> None:
        extensions = {"trace": follow_acked(stream)} if opts.tcp_acked else {}
        # Start small: a stream's bytes are only known when a request completes, so a
        # large first request on a slow link (where streams can starve each other for
        # seconds) would leave its delivery unknown across the warm-up's end.
        size = PIECE
        while not stop.is_set():
            began = time.perf_counter()
            try:
                response = client.post(url, content=_body(size, stream, stop),
                                       headers={"Content-Length": str(size),
                                                "Content-Type": "application/octet-stream"},
                                       extensions=extensions)
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
                done - start, size if confirmed is None else confirmed, began - start))
            # with acknowledged bytes counted live, completions are not needed: fill
            size = next_size(size, began, start, opts,
                             fill=stream.acked.following and not stream.acked_missing)

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

"""WebSocket hold: open ws:// or wss://, keep it alive with pings, see how long it lasts.

Live quizzes (Kahoot asks for 60 s) and classroom tools keep one WebSocket open; filters
and proxies that cut long-lived connections break them. The check opens the socket (over
its own TCP connection, so DNS goes through the injected resolver), then sends a ping
every ``ping_interval_s`` and listens, until ``hold_s`` has passed or the connection ends.

``websocket_hold_s`` is the last moment the connection was *proven* open, in seconds from
the end of the opening handshake (method ``websocket_ping:OUTCOME``):

- ``held``: open for the whole ``hold_s`` (a final ping at the end was answered): the
  value is about ``hold_s``, a lower bound of what the path allows.
- ``closed_by_peer``: a Close frame came (the server, or a proxy speaking WebSocket):
  the value is when it came; the reason has ``close_code=`` and ``close_reason=``.
- ``severed``: the connection ended without a Close frame (TCP reset or EOF, what a
  filter cutting the flow does): the value is when that was seen.
- ``pong_timeout``: a ping got no pong within ``ping_timeout_s`` (the flow is silently
  dropped): the value is the time of the last pong.

The certificate is not checked here (the ``tls`` check judges it): a classroom browser
would trust the school's interception CA, so the hold is measured through it.
Uses the ``websockets`` package (sync client, imported when the check runs): its framing,
masking and ping/pong are battle-tested, which a hand-written client would not be.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from agent.probes.pathnet import (
    PathTarget,
    Resolver,
    connect,
    describe,
    lookup,
    unverified_context,
)
from agent.probes.results import ResultBuilder, value
from agent.wire import ProbeResult

NAME = "websocket"


@dataclass(frozen=True)
class HoldOptions:
    hold_s: float = 60.0
    ping_interval_s: float = 5.0
    ping_timeout_s: float = 5.0
    timeout_s: float = 10.0
    """DNS, TCP connect and the opening handshake."""


@dataclass(frozen=True)
class Hold:
    outcome: str
    """held | closed_by_peer | severed | pong_timeout"""
    alive_s: float
    detail: str = ""


POLL_S = 0.02
"""How often a pending pong is looked for (a pong does not wake ``recv``)."""


class _Ended(Exception):  # noqa: N818 - a control-flow signal carrying the outcome
    def __init__(self, outcome: Hold) -> None:
        super().__init__(outcome.outcome)
        self.outcome = outcome


def _closed(exc: Any, alive_s: float) -> Hold:
    rcvd = getattr(exc, "rcvd", None)
    if rcvd is not None:
        return Hold("closed_by_peer", alive_s,
                    f"close_code={rcvd.code}; close_reason={rcvd.reason!r}")
    return Hold("severed", alive_s, "connection ended without a Close frame")


def _listen(ws: Any, until: float, opened: float, clock: Any) -> None:
    """Read (and drop) messages until ``until``; raise _Ended if the connection ends."""
    from websockets.exceptions import ConnectionClosed

    while (remaining := until - clock()) > 0:
        try:
            ws.recv(timeout=remaining)
        except TimeoutError:
            return
        except ConnectionClosed as exc:
            raise _Ended(_closed(exc, clock() - opened)) from exc


def _ping(ws: Any, opts: HoldOptions, opened: float, clock: Any) -> float | None:
    """Ping and wait for the pong; the time it came, or None after ``ping_timeout_s``."""
    from websockets.exceptions import ConnectionClosed

    try:
        pong = ws.ping()
    except ConnectionClosed as exc:
        raise _Ended(_closed(exc, clock() - opened)) from exc
    give_up = clock() + opts.ping_timeout_s
    while not pong.is_set():
        if clock() >= give_up:
            return None
        _listen(ws, min(clock() + POLL_S, give_up), opened, clock)
    return float(clock())


def hold(ws: Any, opts: HoldOptions, clock: Any = time.perf_counter) -> Hold:
    """Keep ``ws`` (a websockets sync connection) open with pings; see the docstring."""
    opened = clock()
    deadline = opened + opts.hold_s
    last_alive = opened
    try:
        while True:
            _listen(ws, min(last_alive + opts.ping_interval_s, deadline), opened, clock)
            final = clock() >= deadline
            pong_at = _ping(ws, opts, opened, clock)
            if pong_at is None:
                return Hold("pong_timeout", last_alive - opened,
                            f"no pong within {opts.ping_timeout_s:g} s")
            last_alive = pong_at
            if final:
                return Hold("held", last_alive - opened)
    except _Ended as ended:
        return ended.outcome


def check_websocket(target: PathTarget, opts: HoldOptions, resolver: Resolver) -> ProbeResult:
    """The ``websocket`` result for a ws:// or wss:// target."""
    r = ResultBuilder(NAME, target=target.raw)
    if target.scheme not in ("ws", "wss"):
        return r.skipped(f"{target.raw} is not a ws:// or wss:// target")
    try:
        from websockets.exceptions import InvalidHandshake, InvalidURI
        from websockets.sync.client import connect as ws_connect
    except ImportError:
        return r.skipped("the websockets package is not installed "
                         "(pip install 'classprobe[agent]')")
    addresses, problem = lookup(target, resolver, opts.timeout_s)
    if problem:
        return r.failed(problem)
    try:
        sock = connect(addresses[0], target.port, opts.timeout_s)
    except OSError as exc:
        return r.failed(f"cannot reach {target.hostport}: {describe(exc, opts.timeout_s)}")
    tls: dict[str, Any] = ({"ssl": unverified_context(), "server_hostname": target.host}
                           if target.tls else {})
    try:
        ws = ws_connect(target.url, sock=sock, open_timeout=opts.timeout_s,
                        close_timeout=1.0, compression=None, **tls)
    except (InvalidHandshake, InvalidURI, OSError) as exc:
        sock.close()
        return r.failed(f"WebSocket handshake with {target.url} failed: "
                        f"{describe(exc, opts.timeout_s)}")
    with ws:  # closes the connection however the hold ends
        outcome = hold(ws, opts)
    seconds = round(outcome.alive_s, 3)
    if outcome.outcome == "held":
        r.note(f"held the whole {opts.hold_s:g} s requested (a lower bound)")
    else:
        r.note(f"{outcome.outcome.replace('_', ' ')} after {seconds:g} s of the "
               f"{opts.hold_s:g} s requested")
    if outcome.detail:
        r.note(outcome.detail)
    r.add(value("websocket_hold_s", f"websocket_ping:{outcome.outcome}", seconds))
    return r.ok()

"""What the path checks share: their targets, an injectable resolver and TCP connects.

Every path check resolves names through a :data:`Resolver` it is given, so tests (and
the lab) can decide what a name resolves to without asking the system resolver; the
default, :func:`system_resolver`, is ``getaddrinfo`` bounded by a timeout.

Targets (:func:`parse_path_target`):

- ``https://host[:port]/path``, ``http://...``: DNS, TCP, (TLS,) HTTP checks.
- ``wss://host[:port]/path``, ``ws://...``: DNS, TCP, (TLS,) and the WebSocket hold.
- ``stun:host[:port]`` (RFC 7064; also ``stun://host:port``): a STUN binding over UDP,
  port 3478 by default.
- ``host[:port]`` (port 443 by default): DNS and TCP only.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from agent.probes import net
from agent.probes.net import getaddrinfo_bounded, is_ip_literal

Resolver = Callable[[str, float], list[str]]
"""``resolve(host, timeout_s) -> [address, ...]``; raises ``socket.gaierror`` (with the
``EAI_*`` code as ``errno``) or ``TimeoutError``."""

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "stun": 3478}


@dataclass(frozen=True)
class PathTarget:
    raw: str
    scheme: str | None
    """http / https / ws / wss / stun; None for a bare ``host[:port]``."""
    host: str
    port: int
    path: str = "/"
    """Path and query for http(s)/ws(s) targets."""

    @property
    def tls(self) -> bool:
        return self.scheme in ("https", "wss")

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.hostport}{self.path}"


def _split_hostport(text: str, raw: str, default_port: int) -> tuple[str, int]:
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        port = int(port_text) if port_text else default_port
    except ValueError as exc:
        raise ValueError(f"target {raw!r}: port {port_text!r} is not a number") from exc
    if not host or not 0 < port < 65536:
        raise ValueError(f"target {raw!r}: expected host[:port] with a port 1-65535")
    return host, port


def parse_path_target(raw: str) -> PathTarget:
    """A URL, ``stun:host[:port]`` or ``host[:port]``; ValueError naming the input."""
    text = raw.strip()
    if not text:
        raise ValueError("empty target")
    lowered = text.lower()
    if lowered.startswith("stun:"):
        rest = text[5:].removeprefix("//").rstrip("/")
        host, port = _split_hostport(rest, raw, DEFAULT_PORTS["stun"])
        return PathTarget(raw=text, scheme="stun", host=host, port=port, path="")
    if "://" not in text:
        host, port = _split_hostport(text, raw, 443)
        return PathTarget(raw=text, scheme=None, host=host, port=port, path="")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "ws", "wss"):
        raise ValueError(f"target {raw!r}: scheme {parts.scheme!r} is not one of "
                         "http, https, ws, wss, stun")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ValueError(f"target {raw!r}: bad port: {exc}") from exc
    if not parts.hostname:
        raise ValueError(f"target {raw!r}: no host name")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return PathTarget(raw=text, scheme=scheme, host=parts.hostname, port=port, path=path)


def system_resolver(host: str, timeout_s: float) -> list[str]:
    """The system resolver's addresses for ``host``, bounded by ``timeout_s``."""
    infos = getaddrinfo_bounded(host, None, timeout_s)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def addresses_of(target: PathTarget, resolver: Resolver, timeout_s: float) -> list[str]:
    """The target's addresses: the literal itself, or what ``resolver`` says."""
    if is_ip_literal(target.host):
        return [target.host]
    return resolver(target.host, timeout_s)


def lookup(target: PathTarget, resolver: Resolver, timeout_s: float) -> tuple[list[str], str]:
    """(addresses, "") or ([], the failure reason) — for checks that just need an address."""
    try:
        addresses = addresses_of(target, resolver, timeout_s)
    except OSError as exc:
        return [], f"DNS lookup of {target.host} failed: {describe(exc, timeout_s)}"
    if not addresses:
        return [], f"DNS lookup of {target.host} returned no address"
    return addresses, ""


def connect(address: str, port: int, timeout_s: float) -> socket.socket:
    """A connected TCP socket (blocking, with ``timeout_s`` on every operation)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def describe(exc: BaseException, timeout_s: float = 0.0) -> str:
    """An exception as a short reason (``timed out after 5 s``, ``Connection refused``)."""
    if isinstance(exc, ssl.SSLError) and not isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS error: {exc.reason or exc}"
    return net.describe(exc, timeout_s)


def unverified_context() -> ssl.SSLContext:
    """A client context that checks nothing: for checks that only need a TLS channel.

    Only the TLS check judges certificates; the block and WebSocket checks must still
    work through an interceptor (a classroom browser would have its CA installed).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context

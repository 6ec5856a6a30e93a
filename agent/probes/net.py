"""Shared by the network probes: target parsing, error wording, TLS trust."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Target:
    raw: str
    host: str
    port: int
    scheme: str | None
    """``http`` / ``https`` for URLs; None for host[:port]."""
    url: str | None

    @property
    def hostport(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_target(raw: str) -> Target:
    """A URL or ``host[:port]`` (IPv6 in brackets); raises ValueError naming the input."""
    text = raw.strip()
    if not text:
        raise ValueError("empty target")
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"target {raw!r}: scheme {parts.scheme!r} is not http or https")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ValueError(f"target {raw!r}: bad port: {exc}") from exc
        if not parts.hostname:
            raise ValueError(f"target {raw!r}: no host name")
        url = text if parts.path else text + "/"
        return Target(raw=text, host=parts.hostname, port=port, scheme=parts.scheme, url=url)
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        port = int(port_text) if port_text else 443
    except ValueError as exc:
        raise ValueError(f"target {raw!r}: port {port_text!r} is not a number") from exc
    if not host or not 0 < port < 65536:
        raise ValueError(f"target {raw!r}: expected host[:port] with a port 1-65535")
    return Target(raw=text, host=host, port=port, scheme=None, url=None)


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def describe(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out after {timeout_s:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, socket.gaierror):
        return str(exc.strerror or exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


Address = tuple[int, tuple[Any, ...]]
"""(address family, sockaddr) as getaddrinfo gives them."""


def describe_httpx(exc: BaseException, timeout_s: float) -> str:
    """An httpx error as the OS error underneath it (refused, timed out, certificate...)."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout_s:g} s"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError):
            return describe(cause, timeout_s)
        cause = cause.__cause__ or cause.__context__
    return f"{type(exc).__name__}: {exc}"


def ssl_context(ca_bundle: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle or None)


def getaddrinfo_bounded(host: str, port: int | None,
                        timeout_s: float) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo`` (TCP) in a worker thread, bounded by ``timeout_s``.

    getaddrinfo has no timeout of its own; a resolver that never answers would otherwise
    hang the probe. Raises ``TimeoutError`` or the lookup's ``OSError``.
    """
    box: dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["result"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            box["error"] = exc

    worker = threading.Thread(target=lookup, name=f"dns {host}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    result: list[tuple[Any, ...]] = box["result"]
    return result

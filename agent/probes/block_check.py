"""Blocked, and how: DNS, then TCP, then TLS, then HTTP, stopping at the first sign.

``blocked`` is 1 only on evidence specific to a filter; its method names the mechanism
and a detail (``mechanism:detail``):

- ``dns:nxdomain`` / ``dns:no_answer``: the resolver says the name does not exist / has no
  address. (A misspelt target reads the same: the target is assumed to be a real service.)
- ``dns:sinkhole=ADDR``: every address is 0.0.0.0/8, 127/8, ``::``, ``::1`` or a configured
  sinkhole (``localhost`` names are exempt).
- ``reset:tls_handshake`` / ``reset:http_request``: the TCP connection was accepted, then
  reset after our ClientHello / request, before any answer: what SNI and Host filters do.
- ``reset:closed_http_request``: closed (FIN) after the request without any response.
- ``tls_error:REASON``: the TLS handshake ended in an alert, a premature EOF
  (``UNEXPECTED_EOF_WHILE_READING``) or a non-TLS answer (``WRONG_VERSION_NUMBER``: a
  plain-HTTP block page on a TLS port). Certificates are *not* checked here (that is the
  ``tls`` check's job), so interception alone is not a block.
- ``timeout:tls_handshake`` / ``timeout:http_response``: connected, request sent, no byte
  back within the timeout (a filter stalling the flow; a server slower than the timeout
  reads the same).
- ``block_page:DETAIL``: an HTTP response judged a block page (:mod:`blockpage`).

``blocked`` is 0 with method ``clean:LAYER`` (``dns``, ``tcp``, ``tls``, ``http``): the
deepest layer checked showed nothing. Cases a client cannot attribute are ``failed`` with
the reason, never a 1: a refused TCP connect (an RST to our SYN comes from a closed port
at the server just as from a filter), a TCP connect timeout (host down or SYN dropped), a
resolver that does not answer (EAI_AGAIN / SERVFAIL), unreachable networks.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Collection
from dataclasses import dataclass, field

from agent.probes.blockpage import (
    BODY_LIMIT,
    Expectation,
    decode_body,
    judge_response,
)
from agent.probes.pathnet import (
    PathTarget,
    Resolver,
    connect,
    describe,
    is_ip_literal,
    unverified_context,
)
from agent.probes.results import ResultBuilder, flag
from agent.wire import ProbeResult

NAME = "block"
USER_AGENT = "classprobe-path/1"


@dataclass(frozen=True)
class BlockOptions:
    timeout_s: float = 10.0
    sinkholes: frozenset[str] = frozenset()
    expect: Expectation = field(default_factory=Expectation)


@dataclass(frozen=True)
class Finding:
    """The outcome of one stage: blocked (1), clean so far (0) or unattributable (None)."""

    blocked: bool | None
    method: str
    reason: str


def is_sinkhole(address: str, sinkholes: Collection[str] = ()) -> bool:
    if address in sinkholes:
        return True
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        return ip in ipaddress.ip_network("0.0.0.0/8") or ip.is_loopback
    return ip.is_unspecified or ip.is_loopback


def _local_name(host: str) -> bool:
    low = host.lower().rstrip(".")
    return low == "localhost" or low.endswith(".localhost")


def classify_dns(host: str, answer: list[str] | BaseException,
                 sinkholes: Collection[str] = (), timeout_s: float = 0) -> Finding | None:
    """A finding from a lookup (addresses or the error it raised); None: go on with them."""
    if isinstance(answer, socket.gaierror):
        code = answer.errno
        if code == socket.EAI_NONAME:
            return Finding(True, "dns:nxdomain", f"{host}: the resolver says the name does "
                           f"not exist ({describe(answer)})")
        if code == getattr(socket, "EAI_NODATA", None):
            return Finding(True, "dns:no_answer", f"{host}: the resolver has no address for "
                           f"it ({describe(answer)})")
        return Finding(None, "dns", f"DNS lookup of {host} failed: {describe(answer)} "
                       "(resolver trouble or a filter dropping the query: cannot tell)")
    if isinstance(answer, BaseException):
        return Finding(None, "dns", f"DNS lookup of {host} failed: "
                       f"{describe(answer, timeout_s)} (resolver trouble or a filter "
                       "dropping the query: cannot tell)")
    if not answer:
        return Finding(True, "dns:no_answer", f"{host}: the resolver returned no address")
    if not _local_name(host) and all(is_sinkhole(a, sinkholes) for a in answer):
        return Finding(True, f"dns:sinkhole={answer[0]}",
                       f"{host} resolves to {', '.join(answer)} (a sinkhole address)")
    return None


def _connect_any(addresses: list[str], port: int, timeout_s: float
                 ) -> tuple[socket.socket | None, str, list[tuple[str, OSError]]]:
    """(socket, address, []) for the first address that connects, else (None, "", errors)."""
    errors: list[tuple[str, OSError]] = []
    for address in addresses:
        try:
            return connect(address, port, timeout_s), address, []
        except OSError as exc:
            errors.append((address, exc))
    return None, "", errors


def classify_connect_error(hostport: str, errors: list[tuple[str, OSError]],
                           timeout_s: float) -> Finding:
    """A failed TCP connect is never attributed: say what it could have been."""
    kinds = {type(exc) for _address, exc in errors}
    if ConnectionRefusedError in kinds:
        why = ("refused (TCP RST to our SYN): nothing listens there or a filter rejects the "
               "connection; a TCP connect cannot tell which")
    elif TimeoutError in kinds:
        why = "no answer to our SYN: the host is down or a filter drops it; cannot tell which"
    else:
        why = "the network gave an error"
    listed = "; ".join(f"{address}: {describe(exc, timeout_s)}" for address, exc in errors)
    return Finding(None, "tcp", f"TCP connect to {hostport} failed ({listed}): {why}")


def classify_tls_error(exc: BaseException, timeout_s: float) -> Finding:
    if isinstance(exc, ConnectionResetError):
        return Finding(True, "reset:tls_handshake",
                       "connection reset after our TLS ClientHello, before any answer")
    if isinstance(exc, TimeoutError):
        return Finding(True, "timeout:tls_handshake",
                       f"no TLS answer to our ClientHello within {timeout_s:g} s")
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or type(exc).__name__
        return Finding(True, f"tls_error:{reason}", f"TLS handshake failed: {describe(exc)}")
    return Finding(None, "tls", f"TLS handshake failed: {describe(exc, timeout_s)}")


@dataclass(frozen=True)
class Response:
    status: int
    location: str
    content_type: str
    body: bytes
    body_error: str = ""
    """Why the body could not be read (the status and headers still count)."""


def http_get(sock: socket.socket, target: PathTarget) -> Response:
    """GET the target's path on an already connected (TLS) socket; at most 64 KiB of body."""
    conn = http.client.HTTPConnection(target.host, target.port)
    conn.sock = sock
    try:
        conn.putrequest("GET", target.path, skip_host=True, skip_accept_encoding=True)
        default = 443 if target.tls else 80
        host = f"[{target.host}]" if ":" in target.host else target.host
        conn.putheader("Host", host if target.port == default else f"{host}:{target.port}")
        conn.putheader("User-Agent", USER_AGENT)
        conn.putheader("Accept", "text/html,*/*")
        conn.putheader("Connection", "close")
        conn.endheaders()
        response = conn.getresponse()
        body, body_error = b"", ""
        try:
            body = response.read(BODY_LIMIT)
        except (OSError, http.client.HTTPException) as exc:
            body_error = describe(exc, sock.gettimeout() or 0.0)
        return Response(response.status, response.getheader("Location") or "",
                        response.getheader("Content-Type") or "", body, body_error)
    finally:
        conn.close()


def classify_http_error(exc: BaseException, timeout_s: float) -> Finding:
    if isinstance(exc, http.client.RemoteDisconnected):
        return Finding(True, "reset:closed_http_request",
                       "connection closed after our HTTP request without any response")
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return Finding(True, "reset:http_request",
                       "connection reset after our HTTP request, before any response")
    if isinstance(exc, TimeoutError):
        return Finding(True, "timeout:http_response",
                       f"no HTTP response within {timeout_s:g} s of the request")
    return Finding(None, "http", f"HTTP request failed: {describe(exc, timeout_s)}")


def classify_response(response: Response, target: PathTarget, opts: BlockOptions) -> Finding:
    text = decode_body(response.body, response.content_type)
    verdict = judge_response(response.status, response.location, text, target.host,
                             opts.expect, opts.sinkholes)
    unread = f" (body not read: {response.body_error})" if response.body_error else ""
    if verdict.blocked:
        return Finding(True, f"block_page:{verdict.detail}",
                       f"HTTP {response.status} from {target.url}: {verdict.evidence}{unread}")
    return Finding(False, "clean:http", f"{target.url}: {verdict.evidence}{unread}")


def find_block(target: PathTarget, opts: BlockOptions, resolver: Resolver) -> Finding:
    """Walk DNS → TCP → TLS → HTTP; the first specific sign, or how far it was clean."""
    if is_ip_literal(target.host):
        addresses = [target.host]
    else:
        try:
            answer: list[str] | BaseException = resolver(target.host, opts.timeout_s)
        except OSError as exc:
            answer = exc
        finding = classify_dns(target.host, answer, opts.sinkholes, opts.timeout_s)
        if finding is not None:
            return finding
        assert isinstance(answer, list)
        addresses = answer
    sock, address, errors = _connect_any(addresses, target.port, opts.timeout_s)
    if sock is None:
        return classify_connect_error(target.hostport, errors, opts.timeout_s)
    try:
        if target.tls:
            try:
                # wrap_socket takes the descriptor over; on failure it closes it.
                sock = unverified_context().wrap_socket(sock, server_hostname=target.host)
            except OSError as exc:
                return classify_tls_error(exc, opts.timeout_s)
        if target.scheme not in ("http", "https"):
            layer = "tls" if target.tls else "tcp"
            return Finding(False, f"clean:{layer}", f"{target.hostport} ({address}): "
                           f"{layer.upper()} connection established")
        try:
            response = http_get(sock, target)
        except (OSError, http.client.HTTPException) as exc:
            return classify_http_error(exc, opts.timeout_s)
    finally:
        sock.close()
    return classify_response(response, target, opts)


def check_block(target: PathTarget, opts: BlockOptions, resolver: Resolver) -> ProbeResult:
    """The ``block`` result for one target (not for ``stun:`` targets)."""
    r = ResultBuilder(NAME, target=target.raw)
    if target.scheme == "stun":
        return r.skipped("STUN targets are checked by the udp check")
    finding = find_block(target, opts, resolver)
    if finding.blocked is None:
        return r.failed(finding.reason)
    r.note(finding.reason)
    r.add(flag("blocked", finding.method, finding.blocked))
    return r.ok()

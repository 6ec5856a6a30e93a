"""TLS interception: does the target's certificate come from the legitimate roots / pin?

One TLS handshake verifies the chain against the legitimate roots — the system trust
store, or ``ca_bundle`` when given (a lab or a private deployment) — and the host name.
If verification fails, a second handshake that checks nothing fetches the chain the path
presented, so the result can say who issued it.

Verdict (``tls_intercepted``, 0/1):

- With ``pins``: the pin decides. The leaf matches when the SHA-256 of its
  SubjectPublicKeyInfo (the HPKP ``pin-sha256`` value) **or** of the whole DER certificate
  equals one of the pins → 0, else → 1. Only the leaf is compared: a presented chain may
  carry any genuine intermediate as a passenger, so pinning an intermediate would not
  prove who holds the leaf's key. Method ``tls_pin:issuer=...``.
- Without pins: verified → 0. Verification failed because the chain leads to a CA the
  legitimate roots do not know (OpenSSL codes in :data:`UNKNOWN_ISSUER`, or a bad
  signature: a forged chain) → 1. Method ``tls_chain:issuer=...``.
- Any other verification error (expired, host-name mismatch, revoked...) says nothing
  about who issued the certificate: ``failed`` with the reason, issuer and fingerprint.
- A handshake that fails for another reason (reset, alert, timeout): ``failed``.

The method's detail is the leaf's issuer as an RFC 4514 string. The reason carries
``issuer=``, ``subject=``, ``cert_sha256=`` (hex), ``spki_sha256=`` (base64), ``root=`` (the
trust anchor, when verified) and ``verify=`` (OpenSSL's message, when not).

Caveat: a school filter whose root CA is installed in the system store verifies against
the system store. To catch it, pass a bundle of public roots only (e.g. certifi's) as
``ca_bundle``, or pin the real key.

Pin syntax (:func:`parse_pin`): 64 hex digits (colons allowed, as ``openssl x509
-fingerprint -sha256`` prints) or 44 base64 characters; an optional ``sha256/``,
``sha256:`` or ``pin-sha256=`` prefix and quotes are ignored.
"""

from __future__ import annotations

import base64
import binascii
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agent.probes.net import ssl_context
from agent.probes.pathnet import (
    PathTarget,
    Resolver,
    connect,
    describe,
    lookup,
    unverified_context,
)
from agent.probes.results import ResultBuilder, flag
from agent.probes.x509 import CertInfo, DerError, parse_certificate
from agent.wire import ProbeResult

NAME = "tls"

UNKNOWN_ISSUER = {
    2: "unable to get issuer certificate",
    7: "certificate signature failure",
    18: "self-signed certificate",
    19: "self-signed certificate in certificate chain",
    20: "unable to get local issuer certificate",
    21: "unable to verify the first certificate",
}
"""OpenSSL X509_V_ERR codes that mean "not issued by the legitimate roots"."""


def parse_pin(text: str) -> bytes:
    """A SHA-256 pin as 32 raw bytes; ValueError naming the value otherwise."""
    value = text.strip().strip("\"'")
    for prefix in ("pin-sha256=", "sha256/", "sha256:"):
        if value.lower().startswith(prefix):
            value = value[len(prefix):].strip("\"'")
    hexed = value.replace(":", "")
    if len(hexed) == 64:
        try:
            return bytes.fromhex(hexed)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error:
        raw = b""
    if len(raw) == 32:
        return raw
    raise ValueError(f"pin {text!r} is not a SHA-256 value (64 hex digits or 44 base64 "
                     "characters)")


def pin_matches(info: CertInfo, pins: Sequence[bytes]) -> bool:
    candidates = {base64.b64decode(info.spki_sha256_b64), bytes.fromhex(info.cert_sha256_hex)}
    return any(pin in candidates for pin in pins)


@dataclass(frozen=True)
class Handshake:
    """What one TLS handshake showed: the presented chain and the verification outcome."""

    chain: list[bytes]
    """DER certificates as presented, leaf first."""
    verified: bool
    verify_code: int | None = None
    verify_message: str = ""
    anchor: bytes | None = None
    """The trust anchor of a verified chain (last certificate of the verified chain)."""


ENCODING_DER = 2
"""``_ssl.ENCODING_DER``: the format argument of ``_ssl.Certificate.public_bytes``."""


def _der_list(certs: Any) -> list[bytes]:
    """DER bytes of each certificate (3.13 gives bytes; 3.10–3.12 ``_ssl.Certificate``)."""
    return [c if isinstance(c, bytes) else c.public_bytes(ENCODING_DER) for c in certs or []]


def presented_chain(tls: ssl.SSLSocket) -> list[bytes]:
    """The chain the peer sent (Python 3.13: public API; 3.10–3.12: the ``_sslobj``)."""
    getter = getattr(tls, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    chain = _der_list(getter()) if getter is not None else []
    if not chain:
        leaf = tls.getpeercert(binary_form=True)
        chain = [leaf] if leaf else []
    return chain


def _verified_anchor(tls: ssl.SSLSocket) -> bytes | None:
    getter = getattr(tls, "get_verified_chain", None)
    if getter is None:
        getter = getattr(getattr(tls, "_sslobj", None), "get_verified_chain", None)
    chain = _der_list(getter()) if getter is not None else []
    return chain[-1] if chain else None


def _handshake(address: str, target: PathTarget, context: ssl.SSLContext,
               timeout_s: float) -> ssl.SSLSocket:
    raw = connect(address, target.port, timeout_s)
    try:
        return context.wrap_socket(raw, server_hostname=target.host)
    except BaseException:
        raw.close()
        raise


def fetch(address: str, target: PathTarget, roots: ssl.SSLContext,
          timeout_s: float) -> Handshake:
    """Verify against ``roots``; on a certificate error fetch the chain unverified."""
    try:
        with _handshake(address, target, roots, timeout_s) as tls:
            return Handshake(chain=presented_chain(tls), verified=True,
                             anchor=_verified_anchor(tls))
    except ssl.SSLCertVerificationError as exc:
        code, message = exc.verify_code, str(exc.verify_message or exc.reason or exc)
    with _handshake(address, target, unverified_context(), timeout_s) as tls:
        return Handshake(chain=presented_chain(tls), verified=False, verify_code=code,
                         verify_message=message)


@dataclass(frozen=True)
class Verdict:
    intercepted: bool | None
    """None: the evidence cannot say (see ``reason``)."""
    method: str
    notes: list[str]


def judge(shake: Handshake, leaf: CertInfo, pins: Sequence[bytes],
          anchor: CertInfo | None) -> Verdict:
    """The interception verdict from one handshake's evidence (pure)."""
    notes = [f"issuer={leaf.issuer}", f"subject={leaf.subject}",
             f"cert_sha256={leaf.cert_sha256_hex}", f"spki_sha256={leaf.spki_sha256_b64}"]
    if anchor is not None:
        notes.append(f"root={anchor.subject}")
    if not shake.verified:
        notes.append(f"verify={shake.verify_message} (code {shake.verify_code})")
    if pins:
        matched = pin_matches(leaf, pins)
        head = "leaf matches the pin" if matched else f"intercepted by {leaf.issuer}: " \
            "leaf does not match the pin"
        return Verdict(not matched, f"tls_pin:issuer={leaf.issuer}", [head, *notes])
    if shake.verified:
        return Verdict(False, f"tls_chain:issuer={leaf.issuer}",
                       ["chain verified by the legitimate roots", *notes])
    if shake.verify_code in UNKNOWN_ISSUER:
        return Verdict(True, f"tls_chain:issuer={leaf.issuer}",
                       [f"intercepted by {leaf.issuer}: not issued by the legitimate roots",
                        *notes])
    return Verdict(None, f"tls_chain:issuer={leaf.issuer}",
                   ["certificate problem other than an unknown issuer: cannot tell "
                    "interception", *notes])


@dataclass(frozen=True)
class TlsOptions:
    timeout_s: float = 5.0
    ca_bundle: str = ""
    pins: tuple[bytes, ...] = ()


def check_tls(target: PathTarget, opts: TlsOptions, resolver: Resolver,
              roots: ssl.SSLContext | None = None) -> ProbeResult:
    """The ``tls`` result for an https/wss target."""
    r = ResultBuilder(NAME, target=target.raw)
    if not target.tls:
        return r.skipped(f"{target.raw} is not a TLS target (https:// or wss://)")
    addresses, problem = lookup(target, resolver, opts.timeout_s)
    if problem:
        return r.failed(problem)
    try:
        shake = fetch(addresses[0], target, roots or ssl_context(opts.ca_bundle),
                      opts.timeout_s)
    except OSError as exc:
        return r.failed(f"TLS handshake with {target.hostport} ({addresses[0]}) failed: "
                        f"{describe(exc, opts.timeout_s)}")
    if not shake.chain:
        return r.failed(f"{target.hostport} presented no certificate")
    try:
        leaf = parse_certificate(shake.chain[0])
        anchor = parse_certificate(shake.anchor) if shake.anchor else None
    except DerError as exc:
        return r.failed(f"cannot read the certificate of {target.hostport}: {exc}")
    verdict = judge(shake, leaf, opts.pins, anchor)
    if verdict.intercepted is None:
        return r.failed("; ".join(verdict.notes))
    for note in verdict.notes:
        r.note(note)
    r.add(flag("tls_intercepted", verdict.method, verdict.intercepted))
    return r.ok()


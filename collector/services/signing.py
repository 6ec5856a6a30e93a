"""Signed reports: the collector's Ed25519 key pair, signing, and a pure verifier.

A signed document is::

    {"report": {...},
     "signed": {"alg": "Ed25519", "key_id": "<16 hex>", "public_key": "<base64 raw>",
                "signed_at": "<ISO 8601 UTC>"},
     "signature": "<base64 of 64 bytes>"}

The signature covers the canonical JSON (``sort_keys``, separators ``(",", ":")``,
``ensure_ascii=False``, UTF-8) of ``{"report": ..., "signed": ...}``, so pretty-printing
or re-ordering the downloaded file does not break it, and changing any value does. The key
id is the first 16 hex digits of the SHA-256 of the raw 32-byte public key.

The embedded public key only says *which* key signed: anyone can sign a document with a
key of their own. :func:`verify_document` with ``expected_public_key`` (the collector's
key from ``GET /api/v1/signing-key``) is what proves the document came from this collector.

The private key is kept in the database as the server secret ``signing_key`` (PKCS#8 PEM,
via :mod:`collector.services.secrets`), made by the first process that needs it, so every
collector process on one database signs with the same key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import Engine
from sqlmodel import Session

from collector.models import ServerSecret
from collector.services.secrets import SecretError, store_secret

ALG = "Ed25519"
SECRET_NAME = "signing_key"
KEY_ID_HEX = 16
RAW_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SIGNED_FIELDS = ("alg", "key_id", "public_key", "signed_at")


# --- the key pair -----------------------------------------------------------------------

def _private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_private(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as exc:
        raise SecretError(f"server secret {SECRET_NAME!r} is not a PEM private key: delete "
                          "the row to make a new key pair (documents signed with the old "
                          "key then no longer verify against the new one)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SecretError(f"server secret {SECRET_NAME!r} holds a {type(key).__name__}, "
                          f"not an {ALG} private key")
    return key


def _stored(engine: Engine) -> str | None:
    """The stored key pair (base64 of the PEM), or None."""
    with Session(engine) as session:
        row = session.get(ServerSecret, SECRET_NAME)
        return None if row is None else row.value


def signing_key(engine: Engine) -> Ed25519PrivateKey:
    """The collector's private key: read from the database, or made and stored once.

    Two processes that both find no key each make one; the secrets store keeps the first
    insert and hands the loser the winner's key, so both sign with the same key.
    """
    stored = _stored(engine)
    if stored is not None:
        try:
            return _load_private(base64.b64decode(stored.encode("ascii"), validate=True))
        except (ValueError, UnicodeEncodeError) as exc:  # binascii.Error is a ValueError
            raise SecretError(f"server secret {SECRET_NAME!r} is not base64: delete the "
                              "row to make a new key pair") from exc
    kept = store_secret(engine, SECRET_NAME, _private_pem(Ed25519PrivateKey.generate()))
    return _load_private(kept)


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """First 16 hex digits of the SHA-256 of the raw public key."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return hashlib.sha256(raw_public_key(public)).hexdigest()[:KEY_ID_HEX]


def public_key_pem(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The public key as SubjectPublicKeyInfo PEM text (what ``--public-key`` reads)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM,
                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_pem(pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; ValueError naming what is wrong otherwise."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise ValueError(f"not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"a {type(key).__name__}, not an {ALG} public key")
    return key


# --- signing ----------------------------------------------------------------------------

def canonical_json(value: Any) -> bytes:
    """The bytes a signature covers. Raises ValueError for NaN/Infinity (not JSON)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def sign_report(report: dict[str, Any], key: Ed25519PrivateKey,
                now: datetime) -> dict[str, Any]:
    """The signed document of ``report`` (a JSON-able dict), signed at ``now``.

    The report is first passed through JSON so the signed object is exactly what a reader
    of the file gets back (tuples become lists, keys become strings).
    """
    if now.tzinfo is None:
        raise ValueError(f"signing time {now.isoformat()} has no timezone")
    plain = json.loads(json.dumps(report, ensure_ascii=False, allow_nan=False))
    signed = {"alg": ALG, "key_id": key_id(key),
              "public_key": base64.b64encode(raw_public_key(key.public_key())).decode("ascii"),
              "signed_at": now.isoformat(timespec="seconds")}
    signature = key.sign(canonical_json({"report": plain, "signed": signed}))
    return {"report": plain, "signed": signed,
            "signature": base64.b64encode(signature).decode("ascii")}


# --- verifying --------------------------------------------------------------------------

@dataclass(frozen=True)
class VerifyResult:
    valid: bool
    reason: str
    """Why it is not valid (empty when valid)."""
    key_id: str | None = None
    signed_at: str | None = None

    @property
    def message(self) -> str:
        if self.valid:
            return f"valid, signed by key {self.key_id} at {self.signed_at}"
        return f"not valid: {self.reason}"


class _Malformed(ValueError):
    pass


def _b64(value: object, what: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise _Malformed(f"{what} is {type(value).__name__}, not a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise _Malformed(f"{what} {value[:24]!r} is not base64") from exc
    if len(raw) != size:
        raise _Malformed(f"{what} is {len(raw)} bytes, not {size}")
    return raw


def _signed_block(doc: object) -> tuple[dict[str, Any], Ed25519PublicKey, bytes]:
    """(signed block, its public key, the signature) or _Malformed naming the fault."""
    if not isinstance(doc, dict):
        raise _Malformed(f"the document is a JSON {type(doc).__name__}, not an object")
    missing = [k for k in ("report", "signed", "signature") if k not in doc]
    if missing:
        raise _Malformed(f"the document has no {', '.join(repr(k) for k in missing)} "
                         "(is it a signed report?)")
    extra = sorted(set(doc) - {"report", "signed", "signature"})
    if extra:
        raise _Malformed(f"unexpected top-level field(s) {', '.join(map(repr, extra))}")
    signed = doc["signed"]
    if not isinstance(signed, dict):
        raise _Malformed(f"'signed' is a JSON {type(signed).__name__}, not an object")
    absent = [k for k in SIGNED_FIELDS if not isinstance(signed.get(k), str)]
    if absent:
        raise _Malformed(f"'signed' lacks the text field(s) {', '.join(map(repr, absent))}")
    if signed["alg"] != ALG:
        raise _Malformed(f"unsupported algorithm {signed['alg']!r} (only {ALG})")
    try:
        public = Ed25519PublicKey.from_public_bytes(
            _b64(signed["public_key"], "'signed.public_key'", RAW_KEY_BYTES))
    except ValueError as exc:
        if isinstance(exc, _Malformed):
            raise
        raise _Malformed(f"'signed.public_key' is not an {ALG} key ({exc})") from exc
    signature = _b64(doc["signature"], "'signature'", SIGNATURE_BYTES)
    return signed, public, signature


def verify_document(doc: object,
                    expected_public_key: Ed25519PublicKey | None = None) -> VerifyResult:
    """Check a parsed signed document. Pure: no I/O, no clock.

    In order: the shape (malformed), the key id against the embedded key, the embedded key
    against ``expected_public_key`` when given (unknown key), then the signature.
    """
    try:
        signed, public, signature = _signed_block(doc)
        assert isinstance(doc, dict)
        payload = canonical_json({"report": doc["report"], "signed": signed})
    except _Malformed as exc:
        return VerifyResult(False, f"malformed: {exc}")
    except (ValueError, UnicodeEncodeError) as exc:
        return VerifyResult(False, f"malformed: the report cannot be put in canonical JSON "
                                   f"({exc})")
    kid, at = key_id(public), signed["signed_at"]
    if signed["key_id"] != kid:
        return VerifyResult(False, f"key id mismatch: 'signed.key_id' says "
                                   f"{signed['key_id']!r} but the embedded public key is "
                                   f"key {kid}", kid, at)
    if expected_public_key is not None and \
            raw_public_key(expected_public_key) != raw_public_key(public):
        return VerifyResult(False, f"unknown key: signed by key {kid}, not by the expected "
                                   f"key {key_id(expected_public_key)}", kid, at)
    try:
        public.verify(signature, payload)
    except InvalidSignature:
        return VerifyResult(False, f"bad signature: the report or the 'signed' block was "
                                   f"changed after key {kid} signed it (or the signature was)",
                            kid, at)
    return VerifyResult(True, "", kid, at)


def _reject_constant(name: str) -> Any:
    raise _Malformed(f"{name} is not a JSON number")


def verify_bytes(data: bytes,
                 expected_public_key: Ed25519PublicKey | None = None) -> VerifyResult:
    """Parse a downloaded file (UTF-8 JSON) and :func:`verify_document` it."""
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        return VerifyResult(False, f"malformed: not UTF-8 text ({exc.reason} at byte "
                                   f"{exc.start})")
    except json.JSONDecodeError as exc:
        return VerifyResult(False, f"malformed: not JSON ({exc.msg} at line {exc.lineno} "
                                   f"column {exc.colno})")
    except _Malformed as exc:
        return VerifyResult(False, f"malformed: {exc}")
    return verify_document(doc, expected_public_key)

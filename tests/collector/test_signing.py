"""Signed reports: the canonical JSON, signing, the pure verifier and its reasons, and the
key pair kept once in the database."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlmodel import Session

from collector.db import init_db, make_engine
from collector.models import ServerSecret
from collector.services import signing
from collector.services.signing import (
    canonical_json,
    key_id,
    load_public_pem,
    public_key_pem,
    raw_public_key,
    sign_report,
    signing_key,
    verify_bytes,
    verify_document,
)

AT = datetime(2027, 3, 29, 8, 0, tzinfo=UTC)
SEED = bytes(range(32))
REPORT = {"site": "Écoles Test", "profiles": [{"profile": "p", "status": "pass",
                                                "value": 12.5, "samples": 3}],
          "generated_at": "2027-03-29T08:00:00+00:00"}


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(SEED)


@pytest.fixture
def doc(key: Ed25519PrivateKey) -> dict[str, Any]:
    return sign_report(REPORT, key, AT)


def test_canonical_json_bytes() -> None:
    assert canonical_json({"b": [1, 2.5, None], "a": "é", "c": {"z": True, "y": "x"}}) == \
        '{"a":"é","b":[1,2.5,null],"c":{"y":"x","z":true}}'.encode()
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        canonical_json({"x": float("nan")})


def test_signature_covers_the_contract_payload(key: Ed25519PrivateKey,
                                               doc: dict[str, Any]) -> None:
    raw = raw_public_key(key.public_key())
    kid = hashlib.sha256(raw).hexdigest()[:16]
    assert doc["signed"] == {"alg": "Ed25519", "key_id": kid,
                             "public_key": base64.b64encode(raw).decode(),
                             "signed_at": "2027-03-29T08:00:00+00:00"}
    assert doc["report"] == REPORT
    # The payload written out by hand from the contract: sort_keys, no spaces, UTF-8.
    payload = ('{"report":{"generated_at":"2027-03-29T08:00:00+00:00","profiles":[{"profile":'
               '"p","samples":3,"status":"pass","value":12.5}],"site":"Écoles Test"},'
               f'"signed":{{"alg":"Ed25519","key_id":"{kid}","public_key":'
               f'"{doc["signed"]["public_key"]}","signed_at":"2027-03-29T08:00:00+00:00"}}}}')
    key.public_key().verify(base64.b64decode(doc["signature"]), payload.encode("utf-8"))


def test_valid_document_verifies(key: Ed25519PrivateKey, doc: dict[str, Any]) -> None:
    result = verify_document(doc, key.public_key())
    assert (result.valid, result.reason) == (True, "")
    assert result.message == f"valid, signed by key {key_id(key)} at 2027-03-29T08:00:00+00:00"
    assert verify_document(doc).valid  # without an expected key: the embedded one
    pretty = json.dumps(doc, indent=4, ensure_ascii=True).encode()  # re-formatted file
    assert verify_bytes(pretty, key.public_key()).valid


def test_report_is_normalised_through_json(key: Ed25519PrivateKey) -> None:
    odd: dict[Any, Any] = {"rows": (1, 2), 3: "int key"}
    doc = sign_report(odd, key, AT)
    assert doc["report"] == {"rows": [1, 2], "3": "int key"}
    assert verify_bytes(json.dumps(doc).encode()).valid


def _bad_signature(kid: str) -> str:
    return (f"bad signature: the report or the 'signed' block was changed after key {kid} "
            "signed it (or the signature was)")


def test_one_changed_byte_fails(key: Ed25519PrivateKey, doc: dict[str, Any]) -> None:
    text = json.dumps(doc, ensure_ascii=False)
    kid = key_id(key)
    for old, new in (("12.5", "12.6"), ('"pass"', '"fail"'), ("Écoles", "Ecoles"),
                     ("2027-03-29T08:00:00+00:00\"}", "2027-03-29T08:00:01+00:00\"}")):
        assert text.count(old) >= 1
        changed = text.replace(old, new, 1).encode()
        result = verify_bytes(changed, key.public_key())
        assert (result.valid, result.reason) == (False, _bad_signature(kid)), old
    signature = bytearray(base64.b64decode(doc["signature"]))
    signature[0] ^= 1
    forged = {**doc, "signature": base64.b64encode(bytes(signature)).decode()}
    assert verify_document(forged).reason == _bad_signature(kid)


def test_signed_block_changes_fail(key: Ed25519PrivateKey, doc: dict[str, Any]) -> None:
    kid = key_id(key)
    later = {**doc, "signed": {**doc["signed"], "signed_at": "2030-01-01T00:00:00+00:00"}}
    assert verify_document(later).reason == _bad_signature(kid)
    other_id = {**doc, "signed": {**doc["signed"], "key_id": "0" * 16}}
    assert verify_document(other_id).reason == (
        f"key id mismatch: 'signed.key_id' says '0000000000000000' but the embedded public "
        f"key is key {kid}")
    other = Ed25519PrivateKey.from_private_bytes(bytes(32))
    swapped_key = {**doc, "signed": {**doc["signed"], "key_id": key_id(other),
                                     "public_key": base64.b64encode(
                                         raw_public_key(other.public_key())).decode()}}
    assert verify_document(swapped_key).reason == _bad_signature(key_id(other))


def test_another_key_fails_with_the_expected_key(key: Ed25519PrivateKey) -> None:
    other = Ed25519PrivateKey.from_private_bytes(bytes(32))
    forged = sign_report(REPORT, other, AT)
    assert verify_document(forged).valid  # self-consistent: why --public-key matters
    result = verify_document(forged, key.public_key())
    assert (result.valid, result.reason) == (
        False, f"unknown key: signed by key {key_id(other)}, not by the expected key "
               f"{key_id(key)}")
    assert result.message == f"not valid: {result.reason}"


@pytest.mark.parametrize(("data", "reason"), [
    (b"{not json", "malformed: not JSON (Expecting property name enclosed in double quotes "
                   "at line 1 column 2)"),
    (b"\xff\xfe", "malformed: not UTF-8 text (invalid start byte at byte 0)"),
    (b"[1, 2]", "malformed: the document is a JSON list, not an object"),
    (b'{"report": {}}', "malformed: the document has no 'signed', 'signature' (is it a "
                        "signed report?)"),
    (b'{"report": {"x": NaN}, "signed": {}, "signature": ""}',
     "malformed: NaN is not a JSON number"),
])
def test_malformed_files(data: bytes, reason: str) -> None:
    result = verify_bytes(data)
    assert (result.valid, result.reason, result.key_id) == (False, reason, None)


def test_malformed_signed_blocks(doc: dict[str, Any]) -> None:
    def reason(**changes: Any) -> str:
        return verify_document({**doc, **changes}).reason

    assert reason(signed=[]) == "malformed: 'signed' is a JSON list, not an object"
    assert reason(signed={"alg": "Ed25519"}) == (
        "malformed: 'signed' lacks the text field(s) 'key_id', 'public_key', 'signed_at'")
    assert reason(signed={**doc["signed"], "alg": "HS256"}) == (
        "malformed: unsupported algorithm 'HS256' (only Ed25519)")
    assert reason(signed={**doc["signed"], "public_key": "AAAA"}) == (
        "malformed: 'signed.public_key' is 3 bytes, not 32")
    assert reason(signature="not base64!") == "malformed: 'signature' 'not base64!' is not base64"
    assert reason(signature=7) == "malformed: 'signature' is int, not a base64 string"
    assert reason(extra=1) == "malformed: unexpected top-level field(s) 'extra'"


def test_public_key_pem_round_trip(key: Ed25519PrivateKey) -> None:
    pem = public_key_pem(key)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert key_id(load_public_pem(pem.encode())) == key_id(key)
    with pytest.raises(ValueError, match="^not a PEM public key"):
        load_public_pem(b"hello")


def test_signing_key_is_made_once_and_kept(engine: Engine) -> None:
    first = signing_key(engine)
    assert key_id(signing_key(engine)) == key_id(first)
    with Session(engine) as session:
        row = session.get(ServerSecret, "signing_key")
        assert row is not None
        assert base64.b64decode(row.value).startswith(b"-----BEGIN PRIVATE KEY-----\n")


def test_the_loser_of_the_first_use_race_takes_the_winners_key(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    winner = signing_key(engine)
    # A process that looked before the winner stored its key: it makes its own, fails to
    # insert it, and signs with the winner's.
    monkeypatch.setattr(signing, "_stored", lambda _engine: None)
    assert key_id(signing_key(engine)) == key_id(winner)


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    engines = [make_engine(f"sqlite:///{tmp_path}/race.db") for _ in range(4)]
    init_db(engines[0])
    ids: list[str] = []
    barrier = threading.Barrier(len(engines))

    def first_use(engine: Engine) -> None:
        barrier.wait()
        ids.append(key_id(signing_key(engine)))

    threads = [threading.Thread(target=first_use, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(ids) == 4 and len(set(ids)) == 1, ids
    for e in engines:
        e.dispose()

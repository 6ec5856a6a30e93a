import ssl

import pytest

from agent.probes.x509 import DerError, decode_oid, escape_rfc4514, parse_certificate
from tests.agent.path.conftest import FIXTURES

FILTER = r"CN=Lab Filter CA,O=Lab Filter Ltd\, Schools Division,C=GB"


def der(name: str) -> bytes:
    return ssl.PEM_cert_to_DER_cert((FIXTURES / name).read_text())


def test_recorded_leaf():
    info = parse_certificate(der("intercepted-leaf.pem"))
    assert info.subject == "CN=teams.example.test"
    assert info.issuer == FILTER
    assert info.cert_sha256_hex == \
        "2d60731fcf9fd4a4c9f49fa7bbeefbf6d43f3799493e5128e1f4670caaadfa64"
    assert info.spki_sha256_b64 == "4HzOH2XIuJHiiCC26cMC29j1U90lbLMT7kYnlHF30uQ="
    assert not info.self_issued


def test_recorded_ca_is_self_issued():
    info = parse_certificate(der("filter-ca.pem"))
    assert (info.subject, info.issuer) == (FILTER, FILTER)
    assert info.spki_sha256_b64 == "4SbCjznajN2gGUXKVtesNJK6eD2509PVXiGEy0uYhc8="
    assert info.self_issued


def test_agrees_with_cryptography_on_generated_certificates():
    trustme = pytest.importorskip("trustme")
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import serialization
    ca = trustme.CA(organization_name='Odd "Name", Ltd; +plus')
    leaf = ca.issue_cert("quiz.test", common_name="quiz.test", organization_unit_name=" ou ")
    for pem in (ca.cert_pem.bytes(), leaf.cert_chain_pems[0].bytes()):
        cert = x509.load_pem_x509_certificate(pem)
        info = parse_certificate(cert.public_bytes(serialization.Encoding.DER))
        assert info.subject == cert.subject.rfc4514_string()
        assert info.issuer == cert.issuer.rfc4514_string()


@pytest.mark.parametrize(("body", "oid"), [
    (bytes.fromhex("550403"), "2.5.4.3"),
    (bytes.fromhex("2a864886f70d010901"), "1.2.840.113549.1.9.1"),
    (bytes.fromhex("0992268993f22c640119"), "0.9.2342.19200300.100.1.25"),
])
def test_decode_oid(body: bytes, oid: str):
    assert decode_oid(body) == oid


@pytest.mark.parametrize(("raw", "escaped"), [
    ("a,b", r"a\,b"), ("#x", r"\#x"), (" x ", r"\ x\ "), ('q"<>;+\\', r'q\"\<\>\;\+\\'),
])
def test_escape_rfc4514(raw: str, escaped: str):
    assert escape_rfc4514(raw) == escaped


@pytest.mark.parametrize(("data", "message"), [
    (b"", "truncated element at offset 0"),
    (b"\x02\x01\x00", "not a DER SEQUENCE"),
    (b"\x30\x05\x30\x03\x02\x01\x00", "tbsCertificate has 1 fields"),
    (b"\x30\x82\xff\xff", "runs past the end"),
])
def test_bad_der_is_named(data: bytes, message: str):
    with pytest.raises(DerError, match=message):
        parse_certificate(data)

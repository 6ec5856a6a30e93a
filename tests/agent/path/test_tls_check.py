import base64
import datetime
import ssl

import pytest

from agent.probes.pathnet import parse_path_target
from agent.probes.tls_check import Handshake, TlsOptions, check_tls, judge, parse_pin
from agent.probes.x509 import CertInfo, parse_certificate
from agent.wire import new_report, semantic_errors
from tests.agent.path.conftest import (
    FIXTURES,
    CertAuthority,
    FakeResolver,
    HttpsFactory,
    nxdomain,
)

# The recorded leaf (fixtures/intercepted-leaf.pem); values checked with
# `openssl x509 -fingerprint -sha256` and `openssl pkey -pubin -outform der | sha256 | base64`.
LEAF_CERT_HEX = "2d60731fcf9fd4a4c9f49fa7bbeefbf6d43f3799493e5128e1f4670caaadfa64"
LEAF_SPKI_B64 = "4HzOH2XIuJHiiCC26cMC29j1U90lbLMT7kYnlHF30uQ="
LEAF_SPKI_HEX = "e07cce1f65c8b891e28820b6e9c302dbd8f553dd256cb313ee4627947177d2e4"
NO_DNS = FakeResolver({})


def leaf_der() -> bytes:
    return ssl.PEM_cert_to_DER_cert((FIXTURES / "intercepted-leaf.pem").read_text())


@pytest.mark.parametrize("text", [
    LEAF_SPKI_B64, f"sha256/{LEAF_SPKI_B64}", f'pin-sha256="{LEAF_SPKI_B64}"', LEAF_SPKI_HEX,
    LEAF_SPKI_HEX.upper(), ":".join(LEAF_SPKI_HEX[i:i + 2] for i in range(0, 64, 2)),
    f"sha256:{LEAF_SPKI_HEX}",
])
def test_parse_pin_accepts_hex_and_base64(text: str):
    assert parse_pin(text) == bytes.fromhex(LEAF_SPKI_HEX)


@pytest.mark.parametrize("text", ["", "abc", "00" * 31, "sha1/" + "A" * 28, "zz" * 32])
def test_parse_pin_rejects_non_sha256(text: str):
    with pytest.raises(ValueError, match="is not a SHA-256 value"):
        parse_pin(text)


def recorded_leaf() -> CertInfo:
    return parse_certificate(leaf_der())


def test_judge_pin_match_beats_an_unknown_issuer():
    shake = Handshake(chain=[leaf_der()], verified=False, verify_code=20,
                      verify_message="unable to get local issuer certificate")
    verdict = judge(shake, recorded_leaf(), [parse_pin(LEAF_CERT_HEX)], None)
    assert verdict.intercepted is False
    assert verdict.method == \
        r"tls_pin:issuer=CN=Lab Filter CA,O=Lab Filter Ltd\, Schools Division,C=GB"
    assert verdict.notes[0] == "leaf matches the pin"


def test_judge_pin_mismatch_on_a_verified_chain_is_interception():
    shake = Handshake(chain=[leaf_der()], verified=True)
    verdict = judge(shake, recorded_leaf(), [b"\x00" * 32], None)
    assert verdict.intercepted is True
    assert verdict.notes[0].startswith(r"intercepted by CN=Lab Filter CA,O=Lab Filter Ltd\, ")
    assert f"cert_sha256={LEAF_CERT_HEX}" in verdict.notes
    assert f"spki_sha256={LEAF_SPKI_B64}" in verdict.notes


@pytest.mark.parametrize(("code", "intercepted"), [
    (20, True), (19, True), (18, True), (21, True), (2, True), (7, True),
    (10, None), (62, None), (64, None), (23, None),
])
def test_judge_by_verify_code(code: int, intercepted: bool | None):
    shake = Handshake(chain=[leaf_der()], verified=False, verify_code=code, verify_message="x")
    assert judge(shake, recorded_leaf(), [], None).intercepted is intercepted


def tls_target(port: int, host: str = "127.0.0.1") -> str:
    return f"https://{host}:{port}/"


def test_chain_from_the_legitimate_roots_is_not_intercepted(https_server: HttpsFactory,
                                                            lab_ca: CertAuthority):
    srv = https_server(lab_ca)
    result = check_tls(parse_path_target(tls_target(srv.port)),
                       TlsOptions(timeout_s=3, ca_bundle=str(lab_ca.bundle)), NO_DNS)
    assert result.status == "ok", result.reason
    [m] = result.measurements
    assert (m.metric, m.value, m.unit) == ("tls_intercepted", 0.0, "bool")
    assert m.method.startswith("tls_chain:issuer=OU=Testing CA #")
    assert m.method.endswith(",O=classprobe test roots")
    assert result.reason is not None
    assert result.reason.startswith("chain verified by the legitimate roots; issuer=")
    assert "root=OU=Testing CA #" in result.reason
    assert semantic_errors(new_report("a", "0", [result])) == []


def test_foreign_ca_is_interception_and_names_the_issuer(https_server: HttpsFactory,
                                                         lab_ca: CertAuthority,
                                                         filter_ca: CertAuthority):
    srv = https_server(filter_ca)
    result = check_tls(parse_path_target(tls_target(srv.port)),
                       TlsOptions(timeout_s=3, ca_bundle=str(lab_ca.bundle)), NO_DNS)
    assert result.status == "ok", result.reason
    [m] = result.measurements
    assert m.value == 1.0
    assert m.method.endswith(",O=Lab Filter Ltd interception CA")
    assert result.reason is not None
    assert result.reason.startswith("intercepted by OU=Testing CA #")
    assert "verify=unable to get local issuer certificate (code 20)" in result.reason
    assert "cert_sha256=" in result.reason and "spki_sha256=" in result.reason


def test_pin_match_and_mismatch_on_the_live_leaf(https_server: HttpsFactory,
                                                 lab_ca: CertAuthority):
    srv = https_server(lab_ca)
    target = parse_path_target(tls_target(srv.port))
    roots = TlsOptions(timeout_s=3, ca_bundle=str(lab_ca.bundle))
    first = check_tls(target, roots, NO_DNS)
    assert first.reason is not None
    spki = first.reason.split("spki_sha256=")[1].split(";")[0]
    assert len(base64.b64decode(spki)) == 32
    matched = check_tls(target, TlsOptions(3, str(lab_ca.bundle), (parse_pin(spki),)), NO_DNS)
    assert [(m.value, m.method.split(":")[0]) for m in matched.measurements] == \
        [(0.0, "tls_pin")]
    other = check_tls(target, TlsOptions(3, str(lab_ca.bundle), (b"\x01" * 32,)), NO_DNS)
    assert [(m.value, m.method.split(":")[0]) for m in other.measurements] == \
        [(1.0, "tls_pin")]
    assert other.reason is not None and "leaf does not match the pin" in other.reason


def test_expired_certificate_is_not_called_interception(https_server: HttpsFactory,
                                                        lab_ca: CertAuthority):
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    srv = https_server(lab_ca, not_before=past, not_after=past + datetime.timedelta(days=1))
    result = check_tls(parse_path_target(tls_target(srv.port)),
                       TlsOptions(timeout_s=3, ca_bundle=str(lab_ca.bundle)), NO_DNS)
    assert result.status == "failed"
    assert result.reason is not None
    assert result.reason.startswith("certificate problem other than an unknown issuer")
    assert "verify=certificate has expired (code 10)" in result.reason


def test_host_name_mismatch_is_not_called_interception(https_server: HttpsFactory,
                                                       lab_ca: CertAuthority):
    srv = https_server(lab_ca, identities=("other.test",))
    result = check_tls(parse_path_target(tls_target(srv.port)),
                       TlsOptions(timeout_s=3, ca_bundle=str(lab_ca.bundle)), NO_DNS)
    assert result.status == "failed"
    assert result.reason is not None and "IP address mismatch" in result.reason


def test_name_target_resolves_through_the_injected_resolver(https_server: HttpsFactory,
                                                            lab_ca: CertAuthority):
    srv = https_server(lab_ca, identities=("quiz.test",))
    resolver = FakeResolver({"quiz.test": ["127.0.0.1"]})
    result = check_tls(parse_path_target(tls_target(srv.port, "quiz.test")),
                       TlsOptions(timeout_s=3, ca_bundle=str(lab_ca.bundle)), resolver)
    assert result.status == "ok", result.reason
    assert [m.value for m in result.measurements] == [0.0]
    assert resolver.asked == ["quiz.test"]


def test_dns_failure_and_non_tls_server_fail_without_numbers(http_server, closed_port: int):
    resolver = FakeResolver({"gone.test": nxdomain()})
    dns = check_tls(parse_path_target("https://gone.test/"), TlsOptions(timeout_s=1), resolver)
    assert (dns.status, dns.reason) == ("failed", "DNS lookup of gone.test failed: "
                                                  "Name or service not known")
    plain = check_tls(parse_path_target(tls_target(http_server.port)), TlsOptions(timeout_s=2),
                      NO_DNS)
    assert plain.status == "failed" and plain.measurements == []
    assert plain.reason is not None and "WRONG_VERSION_NUMBER" in plain.reason
    refused = check_tls(parse_path_target(tls_target(closed_port)), TlsOptions(timeout_s=2),
                        NO_DNS)
    assert refused.reason == f"TLS handshake with 127.0.0.1:{closed_port} (127.0.0.1) " \
                             "failed: Connection refused"


def test_non_tls_target_is_skipped():
    result = check_tls(parse_path_target("http://127.0.0.1/"), TlsOptions(), NO_DNS)
    assert result.status == "skipped"


def test_recorded_fixture_matches_its_pem():
    # The fixture is what the pins above were computed from: guard against edits.
    assert recorded_leaf().cert_sha256_hex == LEAF_CERT_HEX
    assert recorded_leaf().spki_sha256_b64 == LEAF_SPKI_B64

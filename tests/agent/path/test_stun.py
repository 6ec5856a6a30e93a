import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from agent.probes.pathnet import parse_path_target
from agent.probes.stun import (
    StunError,
    StunOptions,
    binding_request,
    check_udp,
    exchange,
    parse_response,
)
from agent.wire import new_report, semantic_errors
from tests.agent.path.conftest import FakeResolver, nxdomain

# RFC 5769 §2.2 / §2.3 sample Binding responses (software "test vector", with
# MESSAGE-INTEGRITY and FINGERPRINT), mapped address 192.0.2.1 / 2001:db8:1234:5678:11:
# 2233:4455:6677, port 32853.
RFC5769_IPV4 = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b74657374207665637"
    "46f7220002000080001a147e112a643000800142b91f599fd9e90c38c7489f92a"
    "f9ba53f06be7d780280004c07d4c96")
RFC5769_IPV6 = bytes.fromhex(
    "010100482112a442b7e7a701bc34d686fa87dfae8022000b74657374207665637"
    "46f7220002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d900080014a3"
    "82954e4be67bf11784c97c8292c275bfe3ed4180280004c8fb0b4c")
RFC_TXID = bytes.fromhex("b7e7a701bc34d686fa87dfae")


def test_binding_request_bytes():
    assert binding_request(RFC_TXID) == bytes.fromhex(
        "000100002112a442b7e7a701bc34d686fa87dfae")


def test_binding_request_needs_a_12_byte_id():
    with pytest.raises(StunError, match="transaction id must be 12 bytes, got 3"):
        binding_request(b"abc")


@pytest.mark.parametrize(("data", "mapped"), [
    (RFC5769_IPV4, ("192.0.2.1", 32853)),
    (RFC5769_IPV6, ("2001:db8:1234:5678:11:2233:4455:6677", 32853)),
])
def test_rfc5769_responses(data: bytes, mapped: tuple[str, int]):
    response = parse_response(data)
    assert response.kind == 0x0101
    assert response.txid == RFC_TXID
    assert response.mapped == mapped
    assert response.fingerprint_ok is True


def test_altered_response_fails_the_fingerprint():
    data = bytearray(RFC5769_IPV4)
    data[30] ^= 0x01  # inside SOFTWARE
    assert parse_response(bytes(data)).fingerprint_ok is False


def test_old_mapped_address_is_read():
    # RFC 3489 style: MAPPED-ADDRESS only, 10.1.2.3:4242, no fingerprint
    attr = struct.pack("!HHBBH4s", 0x0001, 8, 0, 1, 4242, socket.inet_aton("10.1.2.3"))
    data = struct.pack("!HHI12s", 0x0101, len(attr), 0x2112A442, RFC_TXID) + attr
    response = parse_response(data)
    assert (response.mapped, response.fingerprint_ok) == (("10.1.2.3", 4242), None)


@pytest.mark.parametrize(("data", "message"), [
    (b"\x01\x01\x00", "3 bytes is shorter than a STUN header"),
    (RFC5769_IPV4[:4] + b"\x00" * 4 + RFC5769_IPV4[8:], "magic cookie 0x00000000"),
    (b"\x00\x01" + RFC5769_IPV4[2:], "message type 0x0001 is not a Binding response"),
    (RFC5769_IPV4[:40], "body length 60 does not fit the 40-byte datagram"),
])
def test_bad_responses_are_named(data: bytes, message: str):
    with pytest.raises(StunError, match=message):
        parse_response(data)


# --------------------------------------------------------------------------- loopback


def success_for(request: bytes, peer: tuple[str, int]) -> bytes:
    """A Binding success for ``peer``, encoded here independently of the agent's code."""
    txid = request[8:20]
    xport = peer[1] ^ 0x2112
    xaddr = struct.unpack("!I", socket.inet_aton(peer[0]))[0] ^ 0x2112A442
    attr = struct.pack("!HHBBHI", 0x0020, 8, 0, 1, xport, xaddr)
    return struct.pack("!HHI", 0x0101, len(attr), 0x2112A442) + txid + attr


class Responder:
    """A UDP socket on 127.0.0.1: answers STUN (``answer=True``) or stays silent."""

    def __init__(self, answer: bool, drop_first: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.answer, self.drop_first = answer, drop_first
        self.received: list[tuple[bytes, tuple[str, int]]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def loop(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            self.received.append((data, peer))
            if self.answer and len(self.received) > self.drop_first:
                self.sock.sendto(success_for(data, peer), peer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def responders() -> Iterator[list[Responder]]:
    started: list[Responder] = []
    yield started
    for r in started:
        r.close()


FAST = StunOptions(timeout_s=1, attempts=3, rto_s=0.1)
NO_DNS = FakeResolver({})


def test_reachable_with_the_mapped_address(responders: list[Responder]):
    responder = Responder(answer=True)
    responders.append(responder)
    result = check_udp(parse_path_target(f"stun:127.0.0.1:{responder.port}"), FAST, NO_DNS)
    assert result.status == "ok"
    [m] = result.measurements
    assert (m.metric, m.value, m.method) == ("udp_reachable", 1.0, "stun_binding:answer")
    client = responder.received[0][1]
    assert result.reason is not None
    assert result.reason.startswith(f"Binding success response from 127.0.0.1:"
                                    f"{responder.port}; mapped=127.0.0.1:{client[1]}; rtt_ms=")
    assert semantic_errors(new_report("a", "0", [result])) == []


def test_retransmits_with_the_same_transaction_id(responders: list[Responder]):
    responder = Responder(answer=True, drop_first=2)
    responders.append(responder)
    ex = exchange("127.0.0.1", responder.port, FAST)
    assert (ex.outcome, ex.sent) == ("answer", 3)
    ids = {data[8:20] for data, _peer in responder.received}
    assert len(ids) == 1 and len(responder.received) == 3


def test_silent_server_is_no_answer_after_the_schedule(responders: list[Responder]):
    responder = Responder(answer=False)
    responders.append(responder)
    start = time.perf_counter()
    result = check_udp(parse_path_target(f"stun:127.0.0.1:{responder.port}"), FAST, NO_DNS)
    waited = time.perf_counter() - start
    assert 0.7 <= waited < 1.5  # 0.1 + 0.2 + 0.4 s
    assert [(m.value, m.method) for m in result.measurements] == \
        [(0.0, "stun_binding:no_answer")]
    assert result.reason is not None and result.reason.endswith(
        "UDP blocked on the path or the server is down; cannot tell which")
    assert len(responder.received) == 3


def test_closed_udp_port_is_port_unreachable():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = check_udp(parse_path_target(f"stun:127.0.0.1:{port}"), FAST, NO_DNS)
    assert [(m.value, m.method) for m in result.measurements] == \
        [(0.0, "stun_binding:port_unreachable")]


def test_dns_failure_is_failed():
    resolver = FakeResolver({"stun.test": nxdomain()})
    result = check_udp(parse_path_target("stun:stun.test:3478"), FAST, resolver)
    assert (result.status, result.reason) == \
        ("failed", "DNS lookup of stun.test failed: Name or service not known")

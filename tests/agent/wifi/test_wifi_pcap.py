import json
from pathlib import Path
from typing import Any

import pytest

from agent.probes.wifi_capture_file import CaptureError, read_capture
from agent.probes.wifi_frames import frame_from_bytes, ht_rate_mbps
from agent.probes.wifi_model import hash_identifier
from agent.probes.wifi_monitor import monitor_results
from agent.probes.wifi_pcap import analyse_file, analyse_pcap
from agent.wire import ProbeResult, new_report, semantic_errors, to_jsonable
from tests.agent.device.fakes import FakeRunner, Reply
from tests.agent.wifi import captures
from tests.agent.wifi.captures import AP_A, AP_B, STA, beacon, classroom_frames, data

pytest.importorskip("scapy")
SALT = "northfield-2026"


def values(result: ProbeResult) -> dict[str, float | str | None]:
    return {m.metric: (m.value if m.text is None else m.text) for m in result.measurements}


def write_pcap(path: Path, frames: list[Any]) -> Path:
    from scapy.utils import wrpcap

    wrpcap(str(path), frames)
    return path


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pcap(tmp_path_factory.mktemp("pcap") / "classroom.pcap", classroom_frames())


def test_classroom_capture_exact_counts(classroom: Path):
    overall, first, second = analyse_pcap(classroom)
    assert (overall.probe, overall.target, overall.status) == ("wifi_pcap", "capture", "ok")
    assert values(overall) == {"frames_seen": 31.0, "stations_seen": 4.0, "visible_aps": 2.0,
                               "capture_s": 1.0, "retry_pct": 30.0, "airtime_pct": 0.4}
    airtime = next(m for m in overall.measurements if m.metric == "airtime_pct")
    assert airtime.samples == 20
    assert airtime.method == "pcap: sum(bytes*8/rate) / span; 11 frames without a rate left out"
    assert overall.reason == "1 frames with a bad FCS left out"

    assert (first.probe, first.target) == ("wifi_pcap_bss", "bss1")
    assert values(first) == {"stations_seen": 3.0, "bss_station_count": 14.0,
                             "bss_channel_utilisation_pct": 54.9, "retry_pct": 25.0,
                             "channel": 6.0, "band_ghz": 2.4}
    assert second.target == "bss2"
    assert values(second) == {"stations_seen": 1.0, "retry_pct": 50.0, "channel": 6.0,
                              "band_ghz": 2.4}
    assert second.reason == "AP does not advertise BSS Load (none in 3 beacons/probe responses)"


def test_classroom_capture_with_salt_hashes_and_hides_identifiers(classroom: Path):
    results = analyse_pcap(classroom, SALT)
    assert [r.target for r in results] == ["capture", hash_identifier(SALT, AP_A),
                                           hash_identifier(SALT, AP_B)]
    assert values(results[1])["ssid_hash"] == hash_identifier(SALT, "SchoolNet")
    assert "ssid_hash" not in values(results[2])  # hidden SSID: nothing to hash
    assert semantic_errors(new_report("a", "0", results)) == []
    dumped = json.dumps([to_jsonable(r) for r in results]).lower()
    for secret in ["schoolnet", AP_A, AP_B, *STA, captures.PROBER, captures.ROGUE]:
        assert secret not in dumped


def test_pcapng_gives_the_same_answer(tmp_path: Path, classroom: Path):
    from scapy.utils import wrpcapng

    path = tmp_path / "classroom.pcapng"
    wrpcapng(str(path), classroom_frames())
    assert [values(r) for r in analyse_pcap(path)] == [values(r) for r in
                                                         analyse_pcap(classroom)]


def test_truncated_pcap_fails_with_where(tmp_path: Path, classroom: Path):
    whole = classroom.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(whole[:-30])
    (only,) = analyse_pcap(cut)
    assert only.status == "failed" and only.measurements == []
    last = len(bytes(classroom_frames()[-1]))  # the bad-FCS frame, record 32
    assert only.reason == (f"cut.pcap is truncated: record 32's data at byte "
                           f"{len(whole) - last} needs {last} bytes, only {last - 30} remain")


def test_truncated_pcapng_fails(tmp_path: Path):
    from scapy.utils import wrpcapng

    path = tmp_path / "cut.pcapng"
    wrpcapng(str(path), classroom_frames()[:3])
    path.write_bytes(path.read_bytes()[:-6])
    (only,) = analyse_pcap(path)
    assert only.status == "failed"
    assert only.reason is not None and only.reason.startswith("cut.pcapng is truncated: block ")


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "x.pcap is empty"),
    (b"hello, not a capture", "x.pcap is not a pcap or pcapng file (starts with 68656c6c)"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "x.pcap is truncated: the pcap file header at byte 0 needs "
                                  "24 bytes, only 6 remain"),
])
def test_not_a_capture(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    (only,) = analyse_pcap(path)
    assert (only.status, only.reason) == ("failed", reason)


def test_missing_file(tmp_path: Path):
    (only,) = analyse_pcap(tmp_path / "gone.pcap")
    assert (only.status, only.reason) == ("failed",
                                          "cannot read gone.pcap: No such file or directory")


def test_ethernet_capture_is_not_80211(tmp_path: Path):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    path = write_pcap(tmp_path / "lan.pcap", [Ether() / IP(dst="127.0.0.1") / UDP()])
    (only,) = analyse_pcap(path)
    assert only.status == "failed"
    assert only.reason == ("lan.pcap: record 1 has link type 1 (Ethernet), not 802.11: "
                           "capture on a monitor-mode interface (RadioTap, link type 127)")


def test_only_bad_fcs_frames_is_no_frame(tmp_path: Path):
    path = write_pcap(tmp_path / "bad.pcap", [data(AP_A, STA[0], True, False, 1.0, "badFCS")])
    with pytest.raises(CaptureError, match=r"holds no decodable 802.11 frame \(1 with a bad FCS\)"):
        analyse_file(path)


def test_single_frame_has_no_span_for_airtime(tmp_path: Path):
    path = write_pcap(tmp_path / "one.pcap", [data(AP_A, STA[0], True, False, 5.0)])
    overall, _ = analyse_pcap(path)
    assert "airtime_pct" not in values(overall)
    assert overall.reason == "airtime_pct not measured: the capture spans no time (one timestamp)"


def test_malformed_bss_load_element_is_reported_not_read(tmp_path: Path):
    path = write_pcap(tmp_path / "odd.pcap", [
        beacon(AP_A, b"SchoolNet", 6, None, 1.0, load_body=b"\x01\x00\x02\x03"),
        data(AP_A, STA[0], True, False, 2.0)])
    _, bss = analyse_pcap(path)
    assert bss.reason == "BSS Load not measured: BSS Load element has length 4, expected 5"
    assert "bss_station_count" not in values(bss)


def test_frame_lengths_rates_and_fcs():
    from scapy.layers.dot11 import Dot11, Dot11FCS, RadioTap

    plain = bytes(data(AP_A, STA[0], True, True, 1.0))
    frame = frame_from_bytes(127, plain, 1.0, len(plain))
    assert frame is not None
    assert (frame.length, frame.rate_mbps, frame.retry, frame.to_ds, frame.freq_mhz) == (
        150, 6.0, True, True, 2437)
    with_fcs = bytes(RadioTap(present="Flags", Flags="FCS") / Dot11FCS(type=2, addr1=AP_A))
    fcs_frame = frame_from_bytes(127, with_fcs, 1.0, len(with_fcs))
    assert fcs_frame is not None and fcs_frame.length == 28  # 24 header + 4 FCS, no extra
    ht = bytes(RadioTap(present="MCS", knownMCS="MCS_bandwidth+MCS_index+guard_interval",
                        MCS_index=7, MCS_bandwidth=0, guard_interval=1) / Dot11(type=2))
    ht_frame = frame_from_bytes(127, ht, 1.0, len(ht))
    assert ht_frame is not None and ht_frame.rate_mbps == pytest.approx(72.222, abs=1e-3)
    bare = frame_from_bytes(105, bytes(Dot11(type=2, addr1=AP_A)), 1.0, 24)
    assert bare is not None and (bare.length, bare.rate_mbps) == (28, None)


@pytest.mark.parametrize(("index", "width", "sgi", "rate"), [
    (0, 20, False, 6.5), (7, 20, False, 65.0), (7, 40, False, 135.0), (15, 40, True, 300.0),
    (31, 40, True, 600.0)])
def test_ht_rate_table(index: int, width: int, sgi: bool, rate: float):
    assert ht_rate_mbps(index, width, sgi) == pytest.approx(rate, abs=0.05)
    assert ht_rate_mbps(32, 20, False) is None


def test_read_capture_records(classroom: Path):
    records = list(read_capture(classroom))
    assert len(records) == 32 and {r.linktype for r in records} == {127}
    assert (records[0].time, records[-1].time) == (100.0, 101.5)


MON_DEV = ("iw", "dev")


class FakeSniffer:
    def __init__(self, frames: list[Any]):
        self.frames = frames
        self.kwargs: dict[str, Any] = {}

    def __call__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        for frame in self.frames:
            kwargs["prn"](_reparsed(frame))


def _reparsed(frame: Any) -> Any:
    """The packet as a socket would deliver it: dissected from bytes, with a time."""
    from scapy.layers.dot11 import RadioTap

    pkt = RadioTap(bytes(frame))
    pkt.time = frame.time
    return pkt


def _monitor_runner() -> FakeRunner:
    return FakeRunner({MON_DEV: Reply(
        (Path(__file__).parent / "fixtures" / "iw_dev_two_adapters_monitor.txt").read_text())})


def test_monitor_sniffer_feeds_the_same_analysis():
    sniffer = FakeSniffer(classroom_frames())
    results = monitor_results("mon0", 3.0, "", _monitor_runner(), is_root=True, sniffer=sniffer)
    assert sniffer.kwargs["iface"] == "mon0" and sniffer.kwargs["timeout"] == 3.0
    assert sniffer.kwargs["store"] is False
    overall = results[0]
    assert (overall.probe, overall.target) == ("wifi_monitor", "mon0")
    assert values(overall)["stations_seen"] == 4.0 and values(overall)["retry_pct"] == 30.0
    assert [r.probe for r in results[1:]] == ["wifi_monitor_bss", "wifi_monitor_bss"]


@pytest.mark.parametrize(("interface", "root", "reason"), [
    ("", True, "no monitor_interface configured (a Linux adapter already in monitor mode)"),
    ("mon0", False, "monitor-mode sniffing needs root or CAP_NET_RAW"),
    ("wlp2s0", True, "wlp2s0 is not in monitor mode (iw dev: type managed)"),
    ("mon7", True, "mon7 is not in monitor mode (iw dev: no such interface)"),
])
def test_monitor_skips_with_reason(interface: str, root: bool, reason: str):
    sniffer = FakeSniffer([])
    (only,) = monitor_results(interface, 3.0, "", _monitor_runner(), is_root=root,
                              sniffer=sniffer)
    assert (only.status, only.reason) == ("skipped", reason)
    assert sniffer.kwargs == {}


def test_monitor_that_hears_nothing_fails():
    (only,) = monitor_results("mon0", 2.0, "", _monitor_runner(), is_root=True,
                              sniffer=FakeSniffer([]))
    assert (only.status, only.reason) == ("failed", "no 802.11 frame received on mon0 in 2 s")


def test_scapy_is_loaded_only_by_the_analysis_and_never_whole(classroom: Path):
    import subprocess
    import sys

    code = ("import sys, json\n"
            "import agent.probes.wifi, agent.probes.wifi_pcap, agent.probes.wifi_monitor\n"
            "before = 'scapy' in sys.modules\n"
            "from agent.probes.wifi_pcap import analyse_pcap\n"
            f"analyse_pcap(__import__('pathlib').Path({str(classroom)!r}))\n"
            "print(json.dumps([before, 'scapy.layers.dot11' in sys.modules,"
            " 'scapy.all' in sys.modules]))")
    root = Path(__file__).parents[3]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=root).stdout
    assert json.loads(out) == [False, True, False]


def _block(btype: int, body: bytes, endian: str = "<") -> bytes:
    import struct

    body += b"\x00" * (-len(body) % 4)
    length = len(body) + 12
    return struct.pack(endian + "II", btype, length) + body + struct.pack(endian + "I", length)


def test_hand_built_pcapng_big_endian_with_nanosecond_resolution(tmp_path: Path):
    import struct

    frame = bytes.fromhex("0801") + b"\x00" * 22  # bare 802.11 data header, to-DS
    shb = _block(0x0A0D0D0A, bytes.fromhex("1a2b3c4d") + struct.pack(">HHq", 1, 0, -1), ">")
    tsresol = struct.pack(">HH", 9, 1) + b"\x09\x00\x00\x00" + struct.pack(">HH", 0, 0)
    idb = _block(1, struct.pack(">HHI", 105, 0, 65535) + tsresol, ">")
    ts = 1_700_000_000_123_456_789
    epb = _block(6, struct.pack(">IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame),
                                len(frame)) + frame, ">")
    spb = _block(3, struct.pack(">I", len(frame)) + frame, ">")  # no timestamp: skipped
    path = tmp_path / "be.pcapng"
    path.write_bytes(shb + idb + epb + spb)
    (record,) = list(read_capture(path))
    assert (record.linktype, record.wire_len) == (105, 24)
    assert record.time == pytest.approx(1_700_000_000.123456789, abs=1e-6)
    damaged = tmp_path / "damaged.pcapng"
    damaged.write_bytes(shb + idb + epb[:-4] + b"\x00\x00\x00\x01")
    with pytest.raises(CaptureError, match=r"block 3 at byte \d+ is damaged"):
        list(read_capture(damaged))
    orphan = tmp_path / "orphan.pcapng"
    orphan.write_bytes(shb + epb)
    with pytest.raises(CaptureError, match="names interface 0, which was not described"):
        list(read_capture(orphan))


def test_big_endian_nanosecond_pcap(tmp_path: Path):
    import struct

    frame = bytes.fromhex("0801") + b"\x00" * 22
    header = bytes.fromhex("a1b23c4d") + struct.pack(">HHiIII", 2, 4, 0, 0, 65535, 105)
    record = struct.pack(">IIII", 1000, 500_000_000, len(frame), 1500) + frame
    path = tmp_path / "be.pcap"
    path.write_bytes(header + record)
    (rec,) = list(read_capture(path))
    assert (rec.time, rec.linktype, rec.wire_len, len(rec.data)) == (1000.5, 105, 1500, 24)
    huge = tmp_path / "huge.pcap"
    huge.write_bytes(header + struct.pack(">IIII", 1, 0, 10_000_000, 10_000_000))
    with pytest.raises(CaptureError, match="record 1 claims 10000000 bytes"):
        list(read_capture(huge))

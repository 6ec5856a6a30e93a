"""802.11 frame headers -> :class:`FrameInfo` (header fields only, never the payload).

Dissection uses scapy's ``scapy.layers.dot11`` only, imported inside the functions (about
45 MB; ``scapy.all`` would be 72 MB, lab-facts §6). A FrameInfo keeps what the analysis
needs and nothing else: the frame's payload is dropped as soon as the header is read, and
addresses stay in memory only to be counted (results carry counts and salted hashes).

Rate of a frame, for the airtime estimate: the RadioTap ``Rate`` field (legacy rates, in
500 kb/s units) or, for 802.11n frames, the RadioTap ``MCS`` field turned into a data rate
with the HT formula  rate = N_DBPS(MCS mod 8, width) × streams / symbol time
(3.6 µs with short guard interval, 4 µs otherwise; 802.11-2020 Table 19-27 ff.). VHT/HE
rates are not decoded: such frames have no rate and are left out of the airtime sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.probes.wifi_bssload import BSS_LOAD_ID, BssLoad, parse_bss_load

# Data bits per OFDM symbol for one spatial stream, HT MCS 0..7 (BPSK 1/2 … 64-QAM 5/6).
HT_NDBPS = {20: (26, 52, 78, 104, 156, 208, 234, 260),
            40: (54, 108, 162, 216, 324, 432, 486, 540)}
_FLAG_FCS = 0x10
_FLAG_BAD_FCS = 0x40
_KNOWN_BW, _KNOWN_MCS, _KNOWN_GI = 0x01, 0x02, 0x04


def ht_rate_mbps(index: int, width_mhz: int, short_gi: bool) -> float | None:
    """802.11n data rate for MCS ``index`` (0..31); None outside the table."""
    if not 0 <= index <= 31 or width_mhz not in HT_NDBPS:
        return None
    streams = index // 8 + 1
    return HT_NDBPS[width_mhz][index % 8] * streams / (3.6 if short_gi else 4.0)


@dataclass(frozen=True)
class FrameInfo:
    time: float
    ftype: int
    subtype: int
    retry: bool
    to_ds: bool
    from_ds: bool
    addr1: str | None
    addr2: str | None
    addr3: str | None
    length: int
    """On-air MPDU bytes: original length minus the RadioTap header, plus the 4-byte FCS
    when the capture did not keep it."""
    rate_mbps: float | None = None
    freq_mhz: int | None = None
    bad_fcs: bool = False
    ssid: str | None = None
    channel: int | None = None
    bss_load: BssLoad | None = None
    bss_load_problem: str | None = None

    @property
    def is_beacon_like(self) -> bool:
        """Beacon or probe response: frames that carry the AP's elements."""
        return self.ftype == 0 and self.subtype in (5, 8)


def _radiotap_rate(rt: Any) -> float | None:
    present = int(rt.present or 0)
    if present & (1 << 2) and rt.Rate:
        return float(rt.Rate) / 2
    if present & (1 << 19):
        known = int(rt.knownMCS or 0)
        if not known & _KNOWN_MCS:
            return None
        width = 40 if (known & _KNOWN_BW and int(rt.MCS_bandwidth or 0) == 1) else 20
        sgi = bool(known & _KNOWN_GI and int(rt.guard_interval or 0) == 1)
        return ht_rate_mbps(int(rt.MCS_index or 0), width, sgi)
    return None


def _elements(dot11: Any) -> tuple[str | None, int | None, BssLoad | None, str | None]:
    from scapy.layers.dot11 import Dot11Elt

    ssid = channel = load = problem = None
    elt = dot11.getlayer(Dot11Elt)
    while elt is not None:
        info = bytes(elt.info or b"")
        if elt.ID == 0 and ssid is None:
            ssid = info.decode("utf-8", errors="replace") if info.strip(b"\x00") else ""
        elif elt.ID == 3 and len(info) == 1:
            channel = info[0]
        elif elt.ID == BSS_LOAD_ID and load is None and problem is None:
            try:
                load = parse_bss_load(info)
            except ValueError as exc:
                problem = str(exc)
        elt = elt.payload.getlayer(Dot11Elt) if elt.payload else None
    return ssid, channel, load, problem


def frame_from_packet(pkt: Any, time: float, wire_len: int) -> FrameInfo | None:
    """FrameInfo from a scapy packet (RadioTap/Dot11 or bare Dot11); None if not 802.11."""
    from scapy.layers.dot11 import Dot11, RadioTap

    dot11 = pkt.getlayer(Dot11)
    if dot11 is None:
        return None
    rate = freq = None
    overhead, has_fcs, bad_fcs = 0, False, False
    rt = pkt.getlayer(RadioTap)
    if rt is not None:
        flags = int(rt.Flags or 0) if int(rt.present or 0) & (1 << 1) else 0
        has_fcs, bad_fcs = bool(flags & _FLAG_FCS), bool(flags & _FLAG_BAD_FCS)
        overhead = int(rt.len or 0)
        rate = _radiotap_rate(rt)
        freq = int(rt.ChannelFrequency) if int(rt.present or 0) & (1 << 3) else None
    fc = int(dot11.FCfield or 0)
    ssid = channel = load = problem = None
    if dot11.type == 0 and dot11.subtype in (5, 8):
        ssid, channel, load, problem = _elements(dot11)
    return FrameInfo(
        time=float(time), ftype=int(dot11.type), subtype=int(dot11.subtype),
        retry=bool(fc & 0x08), to_ds=bool(fc & 0x01), from_ds=bool(fc & 0x02),
        addr1=dot11.addr1, addr2=dot11.addr2, addr3=dot11.addr3,
        length=wire_len - overhead + (0 if has_fcs else 4), rate_mbps=rate, freq_mhz=freq,
        bad_fcs=bad_fcs, ssid=ssid, channel=channel, bss_load=load, bss_load_problem=problem)


def frame_from_bytes(linktype: int, data: bytes, time: float, wire_len: int
                     ) -> FrameInfo | None:
    """Dissect one captured record of linktype 127 (RadioTap) or 105 (bare 802.11)."""
    from scapy.layers.dot11 import Dot11, RadioTap

    pkt = RadioTap(data) if linktype == 127 else Dot11(data)
    return frame_from_packet(pkt, time, wire_len)

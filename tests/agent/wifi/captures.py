"""802.11 captures built with scapy for the pcap tests, with their known truth.

The classroom in :func:`classroom_frames` (capture from t=100.0 s to t=101.0 s):

- AP A ``02:00:00:00:0a:01`` "SchoolNet", channel 6: 5 beacons with BSS Load, first
  (12 stations, 128/255), the latest (14 stations, 140/255 = 54.9 %);
- AP B ``02:00:00:00:0b:01``, hidden SSID, channel 6: 3 beacons without BSS Load;
- A: 10 to-DS data frames from 3 stations (4 retried) and 6 from-DS (to two of them and
  2 broadcasts, none retried): 16 data frames, 4 retries = 25.0 %, 3 stations;
- B: 4 to-DS data frames from 1 station, 2 retried = 50.0 %;
- 2 ACKs, 1 probe request from a station that never associates, and 1 data frame with a
  bad FCS from a fifth station (left out everywhere).

Data frames are 24-byte headers + 122 bytes at 6 Mb/s with no FCS captured, so each is
150 bytes on air = 200 µs; the other frames carry no rate. Airtime: 20 × 200 µs over
1 s = 0.4 %. Overall: 31 frames, 4 stations, 2 APs, 20 data frames with 6 retries = 30.0 %.
"""

from __future__ import annotations

import struct
from typing import Any

AP_A, AP_B = "02:00:00:00:0a:01", "02:00:00:00:0b:01"
STA = [f"02:00:00:00:00:{n:02x}" for n in (0x11, 0x12, 0x13, 0x21)]
ROGUE, PROBER, BCAST = "02:00:00:00:00:55", "02:00:00:00:00:99", "ff:ff:ff:ff:ff:ff"


def radiotap(rate_500k: int | None = None, flags: str | None = None, freq: int = 2437) -> Any:
    from scapy.layers.dot11 import RadioTap

    present = (["Flags"] if flags else []) + (["Rate"] if rate_500k else []) + ["Channel"]
    fields: dict[str, Any] = {"present": "+".join(present), "ChannelFrequency": freq,
                              "ChannelFlags": "2GHz+OFDM"}
    if flags:
        fields["Flags"] = flags
    if rate_500k:
        fields["Rate"] = rate_500k
    return RadioTap(**fields)


def beacon(bssid: str, ssid: bytes, channel: int, load: tuple[int, int, int] | None,
           t: float, load_body: bytes | None = None) -> Any:
    from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11Elt

    pkt = (radiotap() / Dot11(type=0, subtype=8, addr1=BCAST, addr2=bssid, addr3=bssid)
           / Dot11Beacon(cap="ESS+privacy") / Dot11Elt(ID=0, info=ssid)
           / Dot11Elt(ID=3, info=bytes([channel])))
    if load is not None:
        pkt = pkt / Dot11Elt(ID=11, info=struct.pack("<HBH", *load))
    elif load_body is not None:
        pkt = pkt / Dot11Elt(ID=11, info=load_body)
    pkt.time = t
    return pkt


def data(bssid: str, station: str, to_ds: bool, retry: bool, t: float,
         flags: str | None = None) -> Any:
    from scapy.layers.dot11 import Dot11
    from scapy.packet import Raw

    fc = ("to_DS" if to_ds else "from_DS") + ("+retry" if retry else "")
    a1, a2 = (bssid, station) if to_ds else (station, bssid)
    pkt = radiotap(12, flags) / Dot11(type=2, subtype=0, FCfield=fc, addr1=a1, addr2=a2,
                                      addr3=BCAST if to_ds else bssid) / Raw(b"\x00" * 122)
    pkt.time = t
    return pkt


def classroom_frames() -> list[Any]:
    from scapy.layers.dot11 import Dot11, Dot11Elt, Dot11ProbeReq

    frames = [beacon(AP_A, b"SchoolNet", 6, (12, 128, 31250) if i < 4 else (14, 140, 31250),
                     100.0 + i / 10) for i in range(5)]
    frames += [beacon(AP_B, b"", 6, None, 100.05 + i / 10) for i in range(3)]
    times = iter(100.5 + i * 0.02 for i in range(20))
    senders = [STA[0]] * 4 + [STA[1]] * 3 + [STA[2]] * 3
    frames += [data(AP_A, sta, True, retry=i in (0, 3, 4, 9), t=next(times))
               for i, sta in enumerate(senders)]
    frames += [data(AP_A, sta, False, retry=False, t=next(times))
               for sta in (STA[0], STA[0], STA[1], STA[1], BCAST, BCAST)]
    frames += [data(AP_B, STA[3], True, retry=i < 2, t=next(times)) for i in range(4)]
    for sta, t in ((STA[0], 100.9), (STA[3], 100.91)):
        ack = radiotap() / Dot11(type=1, subtype=13, addr1=sta)
        ack.time = t
        frames.append(ack)
    probe = (radiotap() / Dot11(type=0, subtype=4, addr1=BCAST, addr2=PROBER, addr3=BCAST)
             / Dot11ProbeReq() / Dot11Elt(ID=0, info=b""))
    probe.time = 101.0
    frames.append(probe)
    # A bad-FCS frame after the last good one: it must not count, nor stretch the span.
    frames.append(data(AP_A, ROGUE, True, retry=True, t=101.5, flags="badFCS"))
    return frames

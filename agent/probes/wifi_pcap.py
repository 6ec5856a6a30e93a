"""Wi-Fi load from 802.11 frames: a capture file (``probe wifi --pcap``) or a live monitor.

Definitions (all over the frames of the capture, frames with a bad FCS left out):

- **per-BSS stations** (``stations_seen``): distinct unicast addresses that exchange data
  frames (including null-data) with the BSS: the transmitter of a to-DS frame, the
  receiver of a from-DS frame, the transmitter of a frame with neither bit (IBSS). The AP
  itself, group addresses and probing stations are not counted. An associated station that
  stays silent for the whole capture is not seen; the AP's own figure is the BSS Load's
  ``bss_station_count``, reported beside it from the latest beacon or probe response.
- **retry_pct**: data frames with the Retry bit / data frames, ×100 (per BSS, and overall).
  Management and control frames are left out: beacons are never retried.
- **airtime_pct**, an estimate: Σ over frames with a known rate of
  (on-air bytes × 8 / rate in Mb/s) µs, divided by the capture span (last − first frame
  time), ×100. Limits: it leaves out the PHY preamble and header (16–20 µs for OFDM, up to
  192 µs for DSSS), the inter-frame spaces and back-off, frames the monitor radio missed
  or received on another channel, and frames whose rate is unknown (VHT/HE); so it is a
  lower bound of real channel occupancy, and noisy for short captures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeGuard

from agent.probes.results import ResultBuilder, text, value
from agent.probes.wifi_bssload import BssLoad
from agent.probes.wifi_capture_file import (
    LINKTYPE_IEEE802_11,
    LINKTYPE_NAMES,
    LINKTYPE_RADIOTAP,
    CaptureError,
    read_capture,
)
from agent.probes.wifi_frames import FrameInfo, frame_from_bytes
from agent.probes.wifi_model import HASH_METHOD, band_of, channel_of, hash_identifier
from agent.wire import ProbeResult


def _unicast(addr: str | None) -> TypeGuard[str]:
    """An individual (not group, not all-zero) MAC address."""
    if not addr or addr == "00:00:00:00:00:00":
        return False
    return not int(addr[:2], 16) & 1


@dataclass
class BssStats:
    bssid: str
    ssid: str | None = None
    channel: int | None = None
    freq_mhz: int | None = None
    beacons: int = 0
    load: BssLoad | None = None
    load_beacons: int = 0
    load_problem: str | None = None
    stations: set[str] = field(default_factory=set)
    data_frames: int = 0
    data_retries: int = 0


@dataclass
class CaptureStats:
    frames: int = 0
    bad_fcs: int = 0
    data_frames: int = 0
    data_retries: int = 0
    first_time: float | None = None
    last_time: float | None = None
    airtime_us: float = 0.0
    frames_with_rate: int = 0
    bsses: dict[str, BssStats] = field(default_factory=dict)

    def _bss(self, bssid: str) -> BssStats:
        return self.bsses.setdefault(bssid, BssStats(bssid))

    def add(self, f: FrameInfo) -> None:
        if f.bad_fcs:
            self.bad_fcs += 1
            return
        self.frames += 1
        self.first_time = f.time if self.first_time is None else min(self.first_time, f.time)
        self.last_time = f.time if self.last_time is None else max(self.last_time, f.time)
        if f.rate_mbps:
            self.frames_with_rate += 1
            self.airtime_us += f.length * 8 / f.rate_mbps
        if f.is_beacon_like and _unicast(f.addr3):
            bss = self._bss(f.addr3)
            bss.beacons += 1
            bss.ssid = f.ssid if f.ssid is not None else bss.ssid
            bss.channel = f.channel or bss.channel
            bss.freq_mhz = f.freq_mhz or bss.freq_mhz
            if f.bss_load is not None:
                bss.load, bss.load_beacons = f.bss_load, bss.load_beacons + 1
            elif f.bss_load_problem:
                bss.load_problem = f.bss_load_problem
        elif f.ftype == 2:
            self.data_frames += 1
            self.data_retries += f.retry
            bssid, station = self._data_roles(f)
            if bssid is not None:
                bss = self._bss(bssid)
                bss.data_frames += 1
                bss.data_retries += f.retry
                if _unicast(station) and station != bssid:
                    bss.stations.add(station)

    @staticmethod
    def _data_roles(f: FrameInfo) -> tuple[str | None, str | None]:
        if f.to_ds and not f.from_ds:
            return f.addr1, f.addr2
        if f.from_ds and not f.to_ds:
            return f.addr2, f.addr1
        if not f.to_ds and not f.from_ds:
            return f.addr3, f.addr2
        return None, None  # four-address (WDS/mesh): no single BSS

    @property
    def span_s(self) -> float:
        if self.first_time is None or self.last_time is None:
            return 0.0
        return self.last_time - self.first_time


def analyse_file(path: Path) -> CaptureStats:
    """CaptureStats of a capture file; CaptureError when it is not analysable 802.11."""
    stats = CaptureStats()
    undecodable = 0
    for i, record in enumerate(read_capture(path), start=1):
        if record.linktype not in (LINKTYPE_RADIOTAP, LINKTYPE_IEEE802_11):
            name = LINKTYPE_NAMES.get(record.linktype, "unknown")
            raise CaptureError(f"{path.name}: record {i} has link type {record.linktype} "
                               f"({name}), not 802.11: capture on a monitor-mode interface "
                               "(RadioTap, link type 127)")
        frame = frame_from_bytes(record.linktype, record.data, record.time, record.wire_len)
        if frame is None:
            undecodable += 1
        else:
            stats.add(frame)
    if stats.frames == 0:
        raise CaptureError(f"{path.name} holds no decodable 802.11 frame"
                           + (f" ({undecodable} undecodable)" if undecodable else "")
                           + (f" ({stats.bad_fcs} with a bad FCS)" if stats.bad_fcs else ""))
    return stats


def _label(salt: str, bssid: str, index: int) -> str:
    return hash_identifier(salt, bssid) if salt else f"bss{index}"


def stats_results(stats: CaptureStats, probe: str, salt: str, method: str,
                  target: str = "capture") -> list[ProbeResult]:
    """One overall result (``target``) and one per BSS (probe ``<probe>_bss``, target the
    BSSID's salted hash, or ``bssN`` without a salt)."""
    overall = ResultBuilder(probe, target)
    overall.add(value("frames_seen", method, stats.frames))
    stations = set().union(*(b.stations for b in stats.bsses.values()))
    overall.add(value("stations_seen", f"{method}: distinct stations in data frames",
                      len(stations)))
    beaconing = [b for b in stats.bsses.values() if b.beacons]
    overall.add(value("visible_aps", f"{method}: BSSs sending beacons/probe responses",
                      len(beaconing)))
    overall.add(value("capture_s", f"{method}: first to last frame", round(stats.span_s, 3)))
    if stats.data_frames:
        overall.add(value("retry_pct", f"{method}: retried data frames / data frames",
                           round(stats.data_retries / stats.data_frames * 100, 1),
                           samples=stats.data_frames))
    else:
        overall.note("retry_pct not measured: no data frames in the capture")
    _airtime(stats, overall, method)
    if stats.bad_fcs:
        overall.note(f"{stats.bad_fcs} frames with a bad FCS left out")
    results = [overall.ok()]
    ordered = sorted(stats.bsses.values(), key=lambda b: (-b.beacons, b.bssid))
    for index, bss in enumerate(ordered, start=1):
        results.append(_bss_result(bss, probe, salt, method, index))
    return results


def _airtime(stats: CaptureStats, r: ResultBuilder, method: str) -> None:
    if stats.frames_with_rate == 0:
        r.note("airtime_pct not measured: no frame carries a RadioTap rate")
        return
    if stats.span_s <= 0:
        r.note("airtime_pct not measured: the capture spans no time (one timestamp)")
        return
    pct = stats.airtime_us / (stats.span_s * 1e6) * 100
    if pct > 100:
        r.note(f"airtime_pct not reported: the estimate came out at {pct:.0f} % (> 100 %), "
               "so timestamps or rates in the capture are wrong")
        return
    missing = stats.frames - stats.frames_with_rate
    r.add(value("airtime_pct", f"{method}: sum(bytes*8/rate) / span"
                + (f"; {missing} frames without a rate left out" if missing else ""),
                round(pct, 2), samples=stats.frames_with_rate))


def _bss_result(bss: BssStats, probe: str, salt: str, method: str, index: int) -> ProbeResult:
    r = ResultBuilder(f"{probe}_bss", _label(salt, bss.bssid, index))
    r.add(value("stations_seen", f"{method}: distinct stations in data frames",
                len(bss.stations)))
    if bss.load is not None:
        src = f"BSS Load element, latest of {bss.load_beacons} beacons/probe responses"
        r.add(value("bss_station_count", src, bss.load.station_count))
        r.add(value("bss_channel_utilisation_pct", src + " (value/255)",
                    bss.load.utilisation_pct))
    elif bss.load_problem:
        r.note(f"BSS Load not measured: {bss.load_problem}")
    elif bss.beacons:
        r.note(f"AP does not advertise BSS Load (none in {bss.beacons} beacons/probe "
               "responses)")
    else:
        r.note("BSS Load not measured: no beacon of this BSS in the capture")
    if bss.data_frames:
        r.add(value("retry_pct", f"{method}: retried data frames / data frames",
                    round(bss.data_retries / bss.data_frames * 100, 1),
                    samples=bss.data_frames))
    channel = bss.channel or (channel_of(bss.freq_mhz) if bss.freq_mhz else None)
    if channel:
        r.add(value("channel", "DS Parameter Set" if bss.channel else "RadioTap frequency",
                    channel))
    band = band_of(bss.freq_mhz) if bss.freq_mhz else None
    if band:
        r.add(value("band_ghz", "RadioTap frequency", band))
    if bss.ssid and salt:
        r.add(text("ssid_hash", HASH_METHOD, hash_identifier(salt, bss.ssid)))
    return r.ok()


def analyse_pcap(path: Path, salt: str = "") -> list[ProbeResult]:
    """``classprobe probe wifi --pcap FILE``: results, or one failed result with the reason."""
    try:
        stats = analyse_file(path)
    except CaptureError as exc:
        return [ResultBuilder("wifi_pcap", "capture").failed(str(exc))]
    return stats_results(stats, "wifi_pcap", salt, "pcap")

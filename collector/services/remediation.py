"""Plain-language remediation for a failing or warning requirement. Pure: no I/O.

Written for a school technician: what was seen (filled with the evidence: worst room,
period, value, and the room's Wi-Fi load when the access point advertises it) and what to
do, per metric family: latency, loss/jitter, bandwidth, Wi-Fi RF, Wi-Fi load, the path
(TLS interception, blocking, WebSocket, UDP) and device specifications. A requirement's
own ``remediation`` text replaces the family's advice; the finding stays in front.

When is the Wi-Fi "busy"? At least :data:`BUSY_UTILISATION_PCT` % channel use (Cisco's
7925G design guidance: channel utilisation below 50 %, research/standards.md §2.5) or at
least :data:`BUSY_STATIONS` stations (College Board: 40 devices per 802.11n access point,
§2.6). Below both, a non-Wi-Fi finding says the Wi-Fi is probably not the cause.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collector.services.capacity import room_test_hint
from collector.services.profiles import Requirement
from collector.services.readiness_samples import OPS, percentile
from collector.services.rows import MeasurementRow

BUSY_UTILISATION_PCT = 50.0
BUSY_STATIONS = 40.0
WIFI_CONTEXT_METRICS = ("bss_channel_utilisation_pct", "bss_station_count", "band_ghz")

OP_PHRASE = {"<": "below", "<=": "at most", ">": "above", ">=": "at least", "==": "exactly"}
LABELS = {
    "tcp_connect_ms": "the round-trip time (TCP connect)", "icmp_rtt_ms": "the ping time",
    "http_ttfb_ms": "the time to first byte", "tls_handshake_ms": "the TLS handshake time",
    "dns_ms": "the DNS lookup time", "target_rtt_ms": "the round-trip time",
    "gateway_rtt_ms": "the round-trip time to the school's gateway",
    "first_hop_rtt_ms": "the round-trip time to the first hop",
    "loaded_latency_ms": "the latency under load", "jitter_ms": "the jitter",
    "loss_pct": "the packet loss", "download_mbps": "the download speed",
    "upload_mbps": "the upload speed", "rssi_dbm": "the Wi-Fi signal",
    "snr_db": "the Wi-Fi signal-to-noise ratio", "noise_dbm": "the Wi-Fi noise floor",
    "retry_pct": "the Wi-Fi retry rate", "channel_busy_pct": "the Wi-Fi channel busy time",
    "co_channel_aps": "the number of access points on the same channel",
    "ram_total_gb": "memory", "cpu_cores": "CPU cores", "cpu_mhz": "CPU speed",
    "disk_free_gb": "free disk space", "battery_health_pct": "battery health",
    "os_supported": "a supported operating system", "websocket_hold_s": "WebSocket hold time",
}
LATENCY = {"tcp_connect_ms", "icmp_rtt_ms", "http_ttfb_ms", "tls_handshake_ms", "target_rtt_ms",
           "hop_rtt_ms"}
LOSS_JITTER = {"loss_pct", "jitter_ms"}
BANDWIDTH = {"download_mbps", "upload_mbps"}
WIFI_RF = {"rssi_dbm", "snr_db", "noise_dbm", "tx_rate_mbps", "rx_rate_mbps", "signal_pct"}
WIFI_LOAD = {"bss_channel_utilisation_pct", "bss_station_count", "stations_seen"}
WIFI_INTERFERENCE = {"retry_pct", "channel_busy_pct", "co_channel_aps", "airtime_pct"}
DEVICE = {"ram_total_gb", "cpu_cores", "cpu_physical_cores", "cpu_mhz", "disk_free_gb",
          "disk_total_gb", "os_supported", "battery_health_pct", "screen_width_px",
          "screen_height_px", "nic_link_mbps", "cpu_busy_pct", "ram_used_pct"}

ADVICE = {
    "dns_ms": "Check the school's DNS server or forwarder: a slow resolver delays every new "
              "connection.",
    "gateway_rtt_ms": "The delay is inside the school: check the switch ports, uplinks and "
                      "Wi-Fi between this room and the school's edge.",
    "first_hop_rtt_ms": "The delay is on the room's own link: check its access point or "
                        "switch port.",
    "loaded_latency_ms": "Latency rises when the link is busy (bufferbloat): turn on smart "
                         "queue management (fq_codel or CAKE) or QoS on the edge router.",
    "latency": "Compare the gateway round trip from the path probe in the same room: if it "
               "is low, the delay is beyond the school, so ask the filtering provider or ISP "
               "to route this traffic directly (no proxy, no detour through a central "
               "filter); if it is high, the room's LAN or Wi-Fi is congested.",
    "loss_jitter": "Loss and jitter come from a busy or weak Wi-Fi link or a saturated "
                   "uplink: check the access point and the uplink at that time, and give "
                   "real-time media priority (QoS) at the school's edge.",
    "bandwidth": "Move backups and updates out of lesson times, check the room's access "
                 "point and uplink, or raise the school's internet bandwidth.",
    "wifi_rf": "Add an access point nearer the room or move one, and check for neighbouring "
               "access points on the same channel.",
    "wifi_interference": "Move the access point to a less crowded channel, use 20 or 40 MHz "
                         "channels on 5 GHz, and turn down neighbours on the same channel.",
    "disk_free_gb": "Free disk space on these devices (old user profiles, caches, updates).",
    "os_supported": "Update these devices to a supported operating system, or replace them.",
    "battery_health_pct": "Replace these batteries or keep the devices on mains power.",
    "cpu_busy_pct": "Close background software on these devices during lessons.",
    "ram_used_pct": "Close background software on these devices during lessons, or add memory.",
    "device": "Upgrade or replace these devices, or keep them out of lessons that use this "
              "product.",
    "generic": "Start with the worst room and period named here.",
}


@dataclass(frozen=True)
class RoomWifi:
    """What the room's access point advertises (BSS Load), medians of the readings."""

    room: str
    period: str | None
    utilisation_pct: float | None
    stations: float | None
    band_24_pct: float | None
    """Share of the room's band readings on 2.4 GHz (None: no band readings)."""

    @property
    def busy(self) -> bool:
        return ((self.utilisation_pct or 0.0) >= BUSY_UTILISATION_PCT
                or (self.stations or 0.0) >= BUSY_STATIONS)


@dataclass(frozen=True)
class Finding:
    """The evidence a remediation is filled with."""

    requirement: Requirement
    status: str
    value: float
    unit: str
    threshold: float
    room: str | None = None
    room_value: float | None = None
    period: str | None = None
    period_value: float | None = None
    devices: int = 0
    failing_devices: int = 0
    worst_device: str | None = None
    worst_device_value: float | None = None
    wifi: RoomWifi | None = None
    class_size: int = 30
    basis: str = ""
    site: str = "SITE"


def _median(values: Sequence[float]) -> float | None:
    return percentile(values, 50) if values else None


def room_wifi(by_metric: Mapping[str, Sequence[MeasurementRow]], room: str,
              period: str | None = None) -> RoomWifi | None:
    """The room's access-point load, in ``period`` when readings exist there, else overall."""
    def values(metric: str, in_period: bool) -> list[float]:
        return [r.value for r in by_metric.get(metric, ()) if r.room == room
                and r.value is not None and r.stat == "value"
                and (not in_period or r.period == period)]

    in_period = period is not None and bool(values("bss_channel_utilisation_pct", True)
                                            or values("bss_station_count", True))
    util = _median(values("bss_channel_utilisation_pct", in_period))
    stations = _median(values("bss_station_count", in_period))
    if util is None and stations is None:
        return None
    bands = values("band_ghz", in_period)
    band_24 = 100.0 * sum(1 for b in bands if b < 3) / len(bands) if bands else None
    return RoomWifi(room, period if in_period else None, util, stations, band_24)


def fmt(value: float) -> str:
    return f"{value:.4g}"


def amount(value: float, unit: str) -> str:
    return fmt(value) if unit in ("bool", "count") else f"{fmt(value)} {unit}"


def room_phrase(room: str) -> str:
    """"12" → "room 12"; "Room 12" and "Lab 2" stay as they are."""
    return f"room {room}" if room[:1].isdigit() else room


def period_phrase(period: str) -> str:
    return period if period.lower().startswith("period") else f"period {period}"


def _targets(req: Requirement) -> str:
    return ", ".join(req.targets) if req.targets else "the required hosts"


def wifi_sentence(wifi: RoomWifi, advise: bool | None = None) -> str:
    """"The Wi-Fi access point in room 12 advertises 80 % channel use with 45 stations…".

    ``advise`` None: what to do when the access point is busy, else that the Wi-Fi is
    probably not the cause; True: what to do in any case; False: the facts only.
    """
    seen = []
    if wifi.utilisation_pct is not None:
        seen.append(f"{wifi.utilisation_pct:.0f} % channel use")
    if wifi.stations is not None:
        seen.append(f"{wifi.stations:.0f} stations")
    when = f" in {period_phrase(wifi.period)}" if wifi.period else ""
    head = f"The Wi-Fi access point in {room_phrase(wifi.room)} advertises {' with '.join(seen)}"
    if advise is False:
        return f"{head}{when}."
    if not (wifi.busy or advise):
        return f"{head}{when}, so the Wi-Fi is probably not the cause."
    moves = [] if wifi.band_24_pct == 0 else ["move devices to 5 GHz"]
    moves += ["turn off the guest network in that room", "add an access point"]
    return f"{head}{when} — {', '.join(moves[:-1])} or {moves[-1]}."


def _where(f: Finding) -> str:
    return f"In {room_phrase(f.room)}" if f.room else "Across the site"


def _finding(f: Finding) -> str:
    req = f.requirement
    label = LABELS.get(req.metric, req.metric)
    to = f" to {', '.join(req.targets)}" if req.targets else ""
    value = f.room_value if f.room is not None and f.room_value is not None else f.value
    limit = f"{OP_PHRASE[req.op]} {amount(f.threshold, req.unit)}"
    share = req.statistic == "share" and not req.per_student
    goal = (req.share_min_pct or 0.0) if share else f.threshold
    passes = OPS[">=" if share else req.op](value, goal)
    close = ", and it is close to that limit" if f.status == "warn" and passes else ""
    if share:
        only = "" if passes else "only "
        text = (f"{_where(f)}, {only}{fmt(value)} % of readings of {label}{to} are {limit}; "
                f"at least {fmt(goal)} % should be{close}.")
    else:
        text = (f"{_where(f)}, {label}{to} is {amount(value, req.unit)} ({req.statistic}); "
                f"it should be {limit}{close}.")
    if f.period is not None and f.period_value is not None:
        unit = "%" if req.statistic == "share" and not req.per_student else req.unit
        # the periods are ranked over the whole site: say so beside a room's own figure
        whose = "Across the site, the worst period" if f.room else "The worst period"
        text += f" {whose} is {period_phrase(f.period)} ({amount(f.period_value, unit)})."
    return text


def _bandwidth(f: Finding) -> str:
    req = f.requirement
    if not req.per_student or f.room is None or f.room_value is None:
        return _finding(f)
    direction = "download" if req.metric == "download_mbps" else "upload"
    basis = "measured by a room test" if f.basis == "room test" else \
        "estimated from single-device tests"
    text = (f"{room_phrase(f.room)[:1].upper()}{room_phrase(f.room)[1:]} carries "
            f"{fmt(f.room_value)} Mbps {direction} in total ({basis}), but {f.class_size} "
            f"students need {fmt(f.threshold)} Mbps ({fmt(req.threshold)} Mbps each).")
    if f.basis != "room test":
        text += f" Run a room test for a measured figure: {room_test_hint(f.site, f.room)}."
    return text


def _path(f: Finding) -> str:
    req, where = f.requirement, f" in {room_phrase(f.room)}" if f.room else ""
    devices = f" ({f.failing_devices} of {f.devices} device(s))" if f.failing_devices else ""
    if req.metric == "tls_intercepted":
        return (f"The school's filter intercepts TLS to {_targets(req)}{where}{devices}. Add "
                f"these hosts to the filter's TLS-inspection (decryption) exemption list: the "
                f"product rejects certificates it does not expect.")
    if req.metric == "blocked":
        return (f"The web filter or firewall blocks {_targets(req)}{where}{devices}. Allow "
                f"these hosts (TCP 443) and check which category the filter puts them in.")
    if req.metric == "websocket_hold_s":
        value = f.room_value if f.room_value is not None else f.value
        return (f"WebSocket connections to {_targets(req)}{where} stay open {fmt(value)} s; "
                f"they need {OP_PHRASE[req.op]} {fmt(f.threshold)} s. Let wss:// traffic to "
                f"these hosts bypass the proxy, or raise the proxy's idle timeout.")
    return (f"UDP to {_targets(req)}{where} gets no answer{devices}. Allow outbound UDP to "
            f"these hosts in the firewall: without it real-time media falls back to TCP and "
            f"quality drops.")


def _device(f: Finding) -> str:
    req = f.requirement
    label = LABELS.get(req.metric, req.metric)
    text = (f"{f.failing_devices} of {f.devices} device(s) fall short: {label} should be "
            f"{OP_PHRASE[req.op]} {amount(f.threshold, req.unit)}")
    if f.worst_device is not None and f.worst_device_value is not None:
        text += f"; the worst, {f.worst_device[:8]}"
        text += f" in {room_phrase(f.room)}" if f.room else ""
        text += f", has {amount(f.worst_device_value, req.unit)}"
    return text + "."


def _family(metric: str) -> tuple[str, str]:
    """(how the finding is told, which advice applies)."""
    if metric in ADVICE:
        kind = "device" if metric in DEVICE else "generic"
        return kind, metric
    for members, kind, advice in (
            (LATENCY, "generic", "latency"), (LOSS_JITTER, "generic", "loss_jitter"),
            (BANDWIDTH, "bandwidth", "bandwidth"), (WIFI_RF, "generic", "wifi_rf"),
            (WIFI_INTERFERENCE, "generic", "wifi_interference"),
            (WIFI_LOAD, "wifi_load", "wifi_interference"),
            ({"tls_intercepted", "blocked", "websocket_hold_s", "udp_reachable"}, "path", ""),
            (DEVICE, "device", "device")):
        if metric in members:
            return kind, advice
    return "generic", "generic"


def remediation(f: Finding) -> str:
    """What to do about a failing or warning requirement, in plain language."""
    req = f.requirement
    kind, advice_key = _family(req.metric)
    own = req.remediation.strip()
    if kind == "wifi_load" and f.wifi is not None:
        parts = [wifi_sentence(f.wifi, advise=not own)]
        advice_key = ""  # the sentence says what to do
    elif kind == "bandwidth":
        parts = [_bandwidth(f)]
    elif kind == "path":
        parts = [_path(f)]
    elif kind == "device" and f.failing_devices:
        parts = [_device(f)]
    else:
        parts = [_finding(f)]
    if own:
        parts.append(own)
    elif advice_key:
        parts.append(ADVICE[advice_key])
    wifi_family = advice_key in ("wifi_rf", "wifi_interference")
    if (f.wifi is not None and kind in ("generic", "bandwidth")
            and advice_key not in ("dns_ms", "gateway_rtt_ms")
            and (f.wifi.busy or not wifi_family)):
        parts.append(wifi_sentence(f.wifi))
    return " ".join(parts)

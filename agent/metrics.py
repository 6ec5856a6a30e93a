"""The metric catalogue: one vocabulary for agent, collector, profiles and dashboards.

Names carry their unit (``_ms``, ``_mbps``, ``_pct``…). Each entry says what the value
means, its unit, and the range of values that are physically plausible. The collector
rejects a measurement whose metric is not here, whose unit differs, or whose value is
outside the range ("absurd"): a probe bug must not become a school's verdict.

Text-valued metrics (``cpu_model``, ``os_name``) carry ``text`` instead of ``value``.
This module is stdlib only: the agent and the collector both import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Kind = Literal["number", "text", "flag"]


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    kind: Kind
    minimum: float | None
    maximum: float | None
    description: str


def _n(name: str, unit: str, lo: float, hi: float, description: str) -> Metric:
    return Metric(name, unit, "number", lo, hi, description)


def _t(name: str, description: str) -> Metric:
    return Metric(name, "text", "text", None, None, description)


def _f(name: str, description: str) -> Metric:
    return Metric(name, "bool", "flag", 0, 1, description)


HOUR_MS = 3_600_000.0

CATALOGUE: dict[str, Metric] = {
    m.name: m
    for m in (
        # latency family
        _n("dns_ms", "ms", 0, HOUR_MS, "name resolution time through the system resolver"),
        _n("tcp_connect_ms", "ms", 0, HOUR_MS, "TCP three-way handshake time (about one RTT)"),
        _n("tls_handshake_ms", "ms", 0, HOUR_MS, "TLS handshake time after TCP connect"),
        _n(
            "http_ttfb_ms", "ms", 0, HOUR_MS, "request sent to first response byte, warm connection"
        ),
        _n("icmp_rtt_ms", "ms", 0, HOUR_MS, "ICMP echo round-trip time"),
        _n("jitter_ms", "ms", 0, HOUR_MS, "mean |difference| of consecutive RTTs (RFC 3550 style)"),
        _n("loss_pct", "%", 0, 100, "share of probes that got no answer"),
        # bandwidth family
        _n("download_mbps", "Mbps", 0, 1_000_000, "download goodput (application bytes)"),
        _n("upload_mbps", "Mbps", 0, 1_000_000, "upload goodput (bytes the server received)"),
        _n("loaded_latency_ms", "ms", 0, HOUR_MS, "RTT measured while the transfer runs"),
        _n("streams", "count", 1, 1024, "parallel connections in the transfer"),
        _n("bytes", "B", 0, 1e15, "bytes counted by the transfer"),
        _n("duration_s", "s", 0, 86_400, "measured transfer window"),
        _n("nic_agreement_pct", "%", 0, 10_000, "bytes counted vs the NIC's own counters"),
        # path family
        _f("tls_intercepted", "TLS chain not issued by a trusted root / the pinned key"),
        _f("blocked", "target blocked on the path (how: see method)"),
        _n("websocket_hold_s", "s", 0, 86_400, "how long a WebSocket stayed open"),
        _f("udp_reachable", "a STUN binding request got an answer"),
        _t("proxy", "proxy in use: none / env / pac"),
        _n("hops", "count", 0, 255, "hops to the target"),
        _n("hop_rtt_ms", "ms", 0, HOUR_MS, "RTT to one traceroute hop (method names hop, address)"),
        _n("first_hop_rtt_ms", "ms", 0, HOUR_MS, "RTT to traceroute hop 1 (LAN / Wi-Fi segment)"),
        _n("gateway_rtt_ms", "ms", 0, HOUR_MS, "RTT to the school edge (last private-address hop)"),
        _n("target_rtt_ms", "ms", 0, HOUR_MS, "RTT to the destination, from the traceroute probes"),
        # device family
        _t("cpu_model", "CPU model string"),
        _n("cpu_cores", "count", 1, 4096, "logical CPUs"),
        _n("cpu_physical_cores", "count", 1, 4096, "physical CPU cores"),
        _n("cpu_mhz", "MHz", 1, 100_000, "maximum (or current) CPU frequency"),
        _n("ram_total_gb", "GB", 0, 65_536, "installed memory, GiB"),
        _n("disk_total_gb", "GB", 0, 1e7, "system disk size, GiB"),
        _n("disk_free_gb", "GB", 0, 1e7, "free space on the system disk, GiB"),
        _t("os_name", "operating system name"),
        _t("os_version", "operating system version"),
        _t("arch", "machine architecture"),
        _n("uptime_s", "s", 0, 1e9, "seconds since boot"),
        _n("battery_pct", "%", 0, 100, "battery charge"),
        _f("battery_plugged", "on mains power"),
        _n("battery_health_pct", "%", 0, 200, "full charge capacity vs design capacity"),
        _n("cpu_busy_pct", "%", 0, 100, "CPU busy during the sample"),
        _n("ram_used_pct", "%", 0, 100, "memory in use"),
        _n("nic_rx_mbps", "Mbps", 0, 1_000_000, "observed receive rate from NIC counters"),
        _n("nic_tx_mbps", "Mbps", 0, 1_000_000, "observed transmit rate from NIC counters"),
        _t("os_build", "OS build (Windows build.UBR, macOS build, Linux kernel release)"),
        _t("os_support_end", "vendor end-of-support date of this OS version (ISO date)"),
        _f("os_supported", "the OS version is within vendor support on the measurement day"),
        _n("battery_cycles", "count", 0, 100_000, "battery charge cycles"),
        _t("screen", "connected screens' resolutions, WxH, comma-separated"),
        _n("screen_width_px", "px", 1, 100_000, "width of the largest connected screen"),
        _n("screen_height_px", "px", 1, 100_000, "height of the largest connected screen"),
        _t("browser_chrome", "installed Google Chrome version"),
        _t("browser_edge", "installed Microsoft Edge version"),
        _t("browser_firefox", "installed Firefox version"),
        _t("browser_safari", "installed Safari version"),
        _t("browser_chromium", "installed Chromium version"),
        _n("nic_link_mbps", "Mbps", 0, 1_000_000, "link speed the OS reports for the NIC"),
        _f("nic_wireless", "the NIC is a Wi-Fi adapter"),
        # wifi family
        _n("rssi_dbm", "dBm", -120, 0, "received signal strength"),
        _n("noise_dbm", "dBm", -130, 0, "noise floor"),
        _n("snr_db", "dB", -20, 100, "signal to noise ratio"),
        _n("tx_rate_mbps", "Mbps", 0, 100_000, "link transmit rate"),
        _n("rx_rate_mbps", "Mbps", 0, 100_000, "link receive rate"),
        _n("channel", "count", 1, 233, "Wi-Fi channel"),
        _n("band_ghz", "GHz", 2, 7, "Wi-Fi band"),
        _n("width_mhz", "MHz", 5, 320, "channel width"),
        _n("bss_station_count", "count", 0, 65_535, "stations the AP reports (BSS Load)"),
        _n("bss_channel_utilisation_pct", "%", 0, 100, "AP-reported channel use (BSS Load)"),
        _n("visible_aps", "count", 0, 10_000, "access points seen in a scan"),
        _n("co_channel_aps", "count", 0, 10_000, "access points on our channel"),
        _n("channel_busy_pct", "%", 0, 100, "channel busy time (survey)"),
        _n("stations_seen", "count", 0, 100_000, "stations seen in a capture"),
        _n("retry_pct", "%", 0, 100, "share of frames with the retry bit"),
        _t("ssid_hash", "HMAC-SHA256(site salt, SSID), 16 hex; the SSID is never sent"),
        _t("bssid_hash", "HMAC-SHA256(site salt, BSSID), 16 hex; the BSSID is never sent"),
        _n("signal_pct", "%", 0, 100, "link quality the OS reports (Windows netsh Signal)"),
        _n("airtime_pct", "%", 0, 100, "estimated airtime: sum(frame bytes*8/rate) / span"),
        _n("frames_seen", "count", 0, 1e12, "802.11 frames in a capture"),
        _n("capture_s", "s", 0, 86_400 * 7, "span of an 802.11 capture, first to last frame"),
        # agent health
        _n("spool_dropped", "count", 0, 1e12, "reports the agent's full spool had to drop"),
    )
}

STATS = ("value", "min", "p50", "p95", "max", "mean")
"""How a measurement summarises its samples. ``value`` is a single reading."""


class CatalogueError(ValueError):
    """A measurement does not fit the catalogue; the message names the bad value."""


def check_value(metric: str, unit: str, value: float | None, text: str | None) -> None:
    """Raise :class:`CatalogueError` unless the measurement fits the catalogue."""
    spec = CATALOGUE.get(metric)
    if spec is None:
        raise CatalogueError(f"unknown metric {metric!r}")
    if unit != spec.unit:
        raise CatalogueError(f"metric {metric!r} has unit {spec.unit!r}, got {unit!r}")
    if spec.kind == "text":
        if text is None or value is not None:
            raise CatalogueError(f"metric {metric!r} is text: set 'text', not 'value'")
        return
    if value is None or text is not None:
        raise CatalogueError(f"metric {metric!r} is numeric: set 'value', not 'text'")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogueError(f"metric {metric!r}: value {value!r} is not a number")
    if not math.isfinite(value):
        raise CatalogueError(f"metric {metric!r}: value {value!r} is not finite")
    if spec.minimum is not None and value < spec.minimum:
        raise CatalogueError(f"metric {metric!r}: value {value!r} is below {spec.minimum}")
    if spec.maximum is not None and value > spec.maximum:
        raise CatalogueError(f"metric {metric!r}: value {value!r} is above {spec.maximum}")

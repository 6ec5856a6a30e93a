"""Plain data shared by the Wi-Fi readers, and the helpers every OS needs.

Each OS reader (``wifi_linux``, ``wifi_windows``, ``wifi_macos``) turns its tools' output
into a :class:`WifiReading`; :mod:`agent.probes.wifi` turns that into results. SSIDs and
BSSIDs live in these objects only in memory: results carry :func:`hash_identifier` of them
(HMAC-SHA256 keyed with the site's salt, truncated), never the names themselves.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field

from agent.probes.wifi_bssload import BssLoad

HASH_HEX_CHARS = 16
"""64 bits of the HMAC: enough to tell a school's APs apart, useless for a lookup table."""
HASH_METHOD = "HMAC-SHA256 with the site salt, first 16 hex"


def hash_identifier(salt: str, value: str) -> str:
    """HMAC-SHA256(key=salt, value) as 16 hex characters. ``salt`` must not be empty."""
    if not salt:
        raise ValueError("hash_identifier needs a non-empty site salt")
    digest = hmac.new(salt.encode("utf-8"), value.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:HASH_HEX_CHARS]


_MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$", re.IGNORECASE)


def normalise_mac(text: str | None) -> str | None:
    """``AA-BB-CC-DD-EE-FF`` / ``aa:bb:…`` -> ``aa:bb:cc:dd:ee:ff``; None if not a MAC."""
    if not text:
        return None
    text = text.strip()
    if not _MAC.match(text):
        return None
    return text.lower().replace("-", ":")


def band_of(freq_mhz: float) -> float | None:
    """2.4, 5 or 6 (GHz) for a centre frequency; None outside the Wi-Fi bands."""
    if 2400 <= freq_mhz < 2500:
        return 2.4
    if 4900 <= freq_mhz < 5925:
        return 5.0
    if 5925 <= freq_mhz <= 7125:
        return 6.0
    return None


def channel_of(freq_mhz: float) -> int | None:
    """IEEE channel number of a 20 MHz channel's centre frequency (802.11 Annex E)."""
    f = int(round(freq_mhz))
    if f == 2484:
        return 14
    if 2412 <= f <= 2472:
        return (f - 2407) // 5
    if f == 5935:
        return 2
    if 5950 < f <= 7115:
        return (f - 5950) // 5
    if 4910 <= f < 5925:
        return (f - 5000) // 5 if f >= 5000 else (f - 4000) // 5
    return None


def freq_of(channel: int, band_ghz: float) -> int | None:
    """Centre frequency of ``channel`` in ``band_ghz`` (inverse of :func:`channel_of`)."""
    if band_ghz == 2.4:
        return 2484 if channel == 14 else (2407 + 5 * channel if 1 <= channel <= 13 else None)
    if band_ghz == 5.0:
        return 5000 + 5 * channel if 32 <= channel <= 177 else None
    if band_ghz == 6.0:
        return 5935 if channel == 2 else (5950 + 5 * channel if 1 <= channel <= 233 else None)
    return None


def band_from_text(text: str) -> float | None:
    """``5 GHz`` / ``2,4 GHz`` / ``2.4GHz`` / ``6 GHz`` -> 5.0 / 2.4 / 2.4 / 6.0."""
    match = re.search(r"(\d+(?:[.,]\d+)?)\s*GHz", text, re.IGNORECASE)
    if not match:
        return None
    value = float(match[1].replace(",", "."))
    return value if value in (2.4, 5.0, 6.0) else None


def number(text: str | None) -> float | None:
    """A number as tools print it: ``866.7``, ``960,7`` (German/French), ``94%``."""
    if text is None:
        return None
    match = re.search(r"-?\d+(?:[.,]\d+)?", text)
    return float(match[0].replace(",", ".")) if match else None


@dataclass
class WifiLink:
    """One adapter's association, as its OS reports it."""

    interface: str
    connected: bool
    source: str
    """The tool(s), used as the measurements' method (``iw link``…)."""
    state: str = ""
    """The OS's own word for a non-connected state (``disconnected``, ``Getrennt``)."""
    ssid: str | None = None
    ssid_withheld: str | None = None
    """Why the SSID is unknown although connected (macOS without Location permission)."""
    bssid: str | None = None
    freq_mhz: float | None = None
    channel: int | None = None
    band_ghz: float | None = None
    band_method: str = ""
    width_mhz: int | None = None
    width_method: str = ""
    rssi_dbm: float | None = None
    rssi_method: str = ""
    noise_dbm: float | None = None
    noise_method: str = ""
    signal_pct: float | None = None
    tx_rate_mbps: float | None = None
    rx_rate_mbps: float | None = None
    notes: list[str] = field(default_factory=list)

    def fill_channel(self) -> None:
        """Derive channel/band from the frequency (or frequency from channel+band)."""
        if self.freq_mhz is not None:
            if self.channel is None:
                self.channel = channel_of(self.freq_mhz)
            if self.band_ghz is None:
                self.band_ghz = band_of(self.freq_mhz)
        elif self.channel is not None and self.band_ghz is not None:
            f = freq_of(self.channel, self.band_ghz)
            self.freq_mhz = float(f) if f is not None else None


@dataclass
class Bss:
    """One access point (BSS) seen in a scan."""

    bssid: str | None
    ssid: str | None = None
    freq_mhz: float | None = None
    channel: int | None = None
    band_ghz: float | None = None
    signal_dbm: float | None = None
    signal_pct: float | None = None
    load: BssLoad | None = None
    load_problem: str | None = None
    """The BSS Load element was there but unreadable (reason)."""
    associated: bool = False

    def same_channel(self, channel: int | None, band_ghz: float | None) -> bool:
        return (channel is not None and self.channel == channel
                and (band_ghz is None or self.band_ghz is None or self.band_ghz == band_ghz))


@dataclass
class ScanResult:
    bsses: list[Bss]
    method: str
    shows_elements: bool
    """True when the tool prints the APs' information elements (so a missing BSS Load
    element means the AP does not advertise it); False when it never shows them."""


@dataclass
class BusyResult:
    busy_pct: float
    method: str


@dataclass
class AdapterReading:
    link: WifiLink
    scan: ScanResult | None = None
    scan_reason: str | None = None
    busy: BusyResult | None = None
    busy_reason: str | None = None


@dataclass
class WifiReading:
    adapters: list[AdapterReading]
    reason: str | None = None
    """Why there is nothing to report (no adapter, tool missing, unknown output)."""
    failed: bool = False
    """True when ``reason`` is a failure (unrecognised output), False when a skip."""

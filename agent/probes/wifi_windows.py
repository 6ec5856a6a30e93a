"""Windows Wi-Fi: ``netsh wlan show interfaces`` and ``netsh wlan show networks mode=bssid``.

netsh prints ``label : value`` lines in the display language of the installation. Labels are
matched after lower-casing and removing accents, against the English, German, French and
Spanish words collected in :data:`LABELS`; where they are not known the parser leans on
what does not change with the language: ``SSID``/``BSSID``/``GUID`` keys, MAC-shaped values,
``NN%`` signal values, the ``ms-settings:privacy-location`` link of the Location-permission
refusal, and the ``N (P %)`` shape of a BSS Load utilisation line. An interface block starts
where a key repeats, so the block split needs no label at all.

What netsh does not give: noise (so no SNR) and channel width. Newer Windows 11 prints an
``Rssi`` line; older builds only ``Signal : 94%``, the link quality that Microsoft defines
as linear between -100 dBm (0 %) and -50 dBm (100 %) (WLAN_ASSOCIATION_ATTRIBUTES
``wlanSignalQuality``), so RSSI = -100 + quality / 2 on 1..99 %; at 0 % and 100 % that is
only a bound and no RSSI is reported.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from agent.probes.device_cmd import CommandError, CommandOutput, Runner
from agent.probes.wifi_bssload import BssLoad, utilisation_consistent
from agent.probes.wifi_model import (
    AdapterReading,
    Bss,
    ScanResult,
    WifiLink,
    WifiReading,
    band_from_text,
    normalise_mac,
    number,
)


def norm(label: str) -> str:
    """Lower case, no accents, single spaces: ``Übertragungsrate (MBit/s)`` ->
    ``ubertragungsrate (mbit/s)``."""
    text = unicodedata.normalize("NFKD", label)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.lower().split())


LABELS: dict[str, set[str]] = {
    "name": {"name", "nom", "nombre"},
    "state": {"state", "status", "etat", "estado"},
    "ssid": {"ssid"},
    "band": {"band", "bande", "banda"},
    "channel": {"channel", "kanal", "canal"},
    "signal": {"signal", "senal"},
    "rssi": {"rssi"},
    "radio": {"radio type", "funktyp", "type de radio", "tipo de radio"},
}
CONNECTED = {"connected", "verbunden", "connecte", "conectado"}
_RX_WORDS = ("receive", "empfang", "reception", "recepcion")
_TX_WORDS = ("transmit", "ubertragung", "bertragung", "transmission", "sende", "transmision")
NO_ADAPTER = "no Wi-Fi adapter (netsh: no wireless interface on the system)"
_NO_ADAPTER = ("there is no wireless interface", "keine drahtlosschnittstelle",
               "aucune interface sans fil", "no hay ninguna interfaz inalambrica")


def _kind(key: str) -> str | None:
    k = norm(key)
    for kind, words in LABELS.items():
        if k in words:
            return kind
    if "bssid" in k:
        return "bssid"
    if any(unit in k for unit in ("mbit", "mbps", "rate")):
        if any(w in k for w in _RX_WORDS):
            return "rx"
        if any(w in k for w in _TX_WORDS):
            return "tx"
    return None


_KV = re.compile(r"^(?P<indent>\s*)(?P<key>[^:]+?)\s*:(?:\s(?P<val>.*))?$")


def _pairs(text: str) -> list[tuple[int, str, str]]:
    """(indent, key, value) of each ``key : value`` line; MAC values keep their colons."""
    out: list[tuple[int, str, str]] = []
    for line in text.splitlines():
        match = _KV.match(line.rstrip())
        if match:
            out.append((len(match["indent"]), match["key"].strip(), (match["val"] or "").strip()))
    return out


def refusal(text: str) -> str | None:
    """A known reason netsh gives instead of data, in any language where recognisable."""
    low = norm(text)
    if "privacy-location" in low or "location permission" in low:
        return ("Windows refuses Wi-Fi details without Location permission (Settings > "
                "Privacy & security > Location: Location services and desktop apps)")
    if "wlansvc" in low:
        return "the WLAN AutoConfig service (wlansvc) is not running"
    if any(phrase in low for phrase in _NO_ADAPTER):
        return NO_ADAPTER
    return None


def parse_interfaces(text: str) -> list[dict[str, str]]:
    """``netsh wlan show interfaces`` as one {kind: value} dict per adapter.

    A new adapter block starts when a key already seen in the current block comes again
    (every block has Name, Description, GUID…). Keys of unknown meaning are kept under
    their normalised label.
    """
    blocks: list[dict[str, str]] = []
    seen: set[str] = set()
    current: dict[str, str] = {}
    for _indent, key, val in _pairs(text):
        if not val:
            continue
        k = norm(key)
        if k in seen:
            blocks.append(current)
            current, seen = {}, set()
        seen.add(k)
        current[_kind(key) or k] = val
    if current:
        blocks.append(current)
    return [b for b in blocks if "guid" in b or "name" in b]


def link_from_block(block: dict[str, str]) -> WifiLink:
    name = block.get("name", "Wi-Fi")
    state = block.get("state", "")
    if norm(state) not in CONNECTED:
        return WifiLink(name, False, "netsh wlan show interfaces", state=state or "unknown")
    link = WifiLink(name, True, "netsh wlan show interfaces",
                    ssid=block.get("ssid") or None, bssid=normalise_mac(block.get("bssid")))
    channel = number(block.get("channel"))
    link.channel = int(channel) if channel is not None else None
    band = band_from_text(block.get("band", ""))
    if band is not None:
        link.band_ghz, link.band_method = band, "netsh Band"
    elif link.channel is not None:
        # Builds that print no Band line predate Windows' 6 GHz support.
        link.band_ghz = 2.4 if link.channel <= 14 else 5.0
        link.band_method = "band from channel (this netsh prints no Band line)"
    link.fill_channel()
    link.rx_rate_mbps, link.tx_rate_mbps = number(block.get("rx")), number(block.get("tx"))
    link.signal_pct = number(block.get("signal"))
    rssi = number(block.get("rssi"))
    if rssi is not None:
        link.rssi_dbm, link.rssi_method = rssi, "netsh Rssi"
    elif link.signal_pct is not None and 0 < link.signal_pct < 100:
        link.rssi_dbm = -100 + link.signal_pct / 2
        link.rssi_method = "netsh Signal % as RSSI (-100 + quality/2, WLAN_SIGNAL_QUALITY)"
    elif link.signal_pct is not None:
        link.notes.append(f"rssi_dbm not measured: signal {link.signal_pct:g} % is the end "
                          "of the quality scale, only a bound on RSSI")
    link.notes.append("noise_dbm and width_mhz not measured: netsh reports neither")
    return link


@dataclass
class _BssBlock:
    bss: Bss
    load_lines: list[tuple[str, str]] = field(default_factory=list)
    in_load: int | None = None


_UTIL = re.compile(r"^(\d+)\s*\((\d+(?:[.,]\d+)?)\s*%\)$")


def _load_from_lines(lines: list[tuple[str, str]]) -> tuple[BssLoad | None, str | None]:
    """BSS Load from the sub-block lines, by English label or by the language-free shape
    ``<raw> (<raw/255 as %> %)`` of the utilisation line (station count is the line
    before it)."""
    labelled = {norm(k): v for k, v in lines}
    stations = labelled.get("connected stations")
    util = labelled.get("channel utilization")
    if stations is None or util is None:
        for i, (_, val) in enumerate(lines):
            match = _UTIL.match(val)
            if match and i > 0 and utilisation_consistent(int(match[1]), number(match[2]) or 0):
                stations, util = lines[i - 1][1], val
                break
    if stations is None or util is None:
        return None, f"BSS Load lines not recognised: {lines!r}"
    match = _UTIL.match(util)
    count = number(stations)
    if not match or count is None:
        return None, f"BSS Load values not recognised: stations {stations!r}, utilisation {util!r}"
    capacity = labelled.get("medium available capacity")
    cap = number(capacity) if capacity else None
    return BssLoad(int(count), int(match[1]), int(cap) if cap is not None else None), None


def parse_networks(text: str) -> dict[str, list[Bss]]:
    """``netsh wlan show networks mode=bssid`` as {interface name: [Bss]}::

        Interface name : Wi-Fi
        SSID 1 : SchoolNet
            BSSID 1                 : 0c:8d:db:11:22:33
                 Signal             : 84%
                 Band               : 5 GHz
                 Channel            : 36
                 Bss Load:
                     Connected Stations:         12
                     Channel Utilization:        45 (17 %)
    """
    result: dict[str, list[Bss]] = {}
    iface = ""
    ssid: str | None = None
    current: _BssBlock | None = None
    blocks: list[tuple[str, _BssBlock]] = []
    for indent, key, val in _pairs(text):
        k = norm(key)
        if indent == 0 and re.fullmatch(r"ssid \d+", k):
            ssid, current = val or None, None
        elif indent == 0 and val:
            iface, ssid, current = val, None, None
            result.setdefault(iface, [])
        elif re.fullmatch(r"bssid \d+", k):
            current = _BssBlock(Bss(normalise_mac(val), ssid=ssid))
            blocks.append((iface, current))
        elif current is not None:
            if current.in_load is not None and indent > current.in_load:
                current.load_lines.append((key, val))
                continue
            current.in_load = None
            if not val:
                current.in_load = indent
                continue
            kind = _kind(key)
            if kind == "signal":
                current.bss.signal_pct = number(val)
            elif kind == "band":
                current.bss.band_ghz = band_from_text(val)
            elif kind == "channel":
                ch = number(val)
                current.bss.channel = int(ch) if ch is not None else None
    for name, block in blocks:
        bss = block.bss
        if bss.band_ghz is None and bss.channel is not None:
            bss.band_ghz = 2.4 if bss.channel <= 14 else 5.0
        if block.load_lines:
            bss.load, bss.load_problem = _load_from_lines(block.load_lines)
        result.setdefault(name, []).append(bss)
    return result


def _run(runner: Runner, *args: str) -> CommandOutput:
    return runner(["netsh", "wlan", *args])


def read_windows(runner: Runner, interface: str | None = None) -> WifiReading:
    try:
        out = _run(runner, "show", "interfaces")
    except CommandError as exc:
        return WifiReading([], f"cannot run netsh: {exc}")
    why = refusal(out.stdout + out.stderr)
    blocks = parse_interfaces(out.stdout)
    if why and not any(b.get("state") for b in blocks):
        return WifiReading([], why)
    if not blocks:
        return WifiReading([], f"netsh wlan show interfaces printed no adapter block "
                               f"(unrecognised output: {out.first_line()!r})", failed=True)
    links = [link_from_block(b) for b in blocks]
    if interface:
        links = [lk for lk in links if lk.interface == interface]
        if not links:
            return WifiReading([], f"no Wi-Fi interface named {interface!r} (netsh)")
    reason: str | None = None
    parsed: dict[str, list[Bss]] = {}
    try:
        nets = _run(runner, "show", "networks", "mode=bssid")
        reason = refusal(nets.stdout + nets.stderr)
        parsed = parse_networks(nets.stdout) if nets.ok and reason is None else {}
        if reason is None and not parsed:
            reason = f"netsh wlan show networks gave no networks ({nets.first_line()})"
    except CommandError as exc:
        reason = str(exc)
    readings: list[AdapterReading] = []
    for link in links:
        bsses = parsed.get(link.interface)
        if bsses is None and len(links) == len(parsed) == 1:
            bsses = next(iter(parsed.values()))  # one adapter, named differently
        scan, why = None, reason
        if bsses is not None:
            scan = ScanResult(bsses, "netsh wlan show networks mode=bssid", True)
        elif why is None:
            why = f"netsh wlan show networks listed nothing for {link.interface}"
        readings.append(AdapterReading(link, scan, why, None,
                                       "Windows reports no channel busy time"))
    return WifiReading(readings)

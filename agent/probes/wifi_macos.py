"""macOS Wi-Fi: ``system_profiler SPAirPortDataType`` and, as root, ``wdutil info``.

``airport -I`` is gone since macOS 14.4. ``system_profiler`` needs no privileges and gives
the current network (SSID as a section name, ``Channel: 36 (5GHz, 80MHz)``,
``Signal / Noise: -52 dBm / -93 dBm``, ``Transmit Rate: 1200``) and the other networks in
range, but no BSSID, and since macOS 14 it shows ``<redacted>`` for SSIDs unless the
process has Location Services permission. ``wdutil info`` (root only) adds the BSSID and
``CCA : 23 %``, the radio's own clear-channel-assessment busy share, reported as
``channel_busy_pct``. Neither tool shows the APs' information elements, so BSS Load is
not available on macOS. Wi-Fi interfaces are ``enN``; ``awdl0``/``llw0`` (AirDrop) are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.probes.device_cmd import CommandError, Runner
from agent.probes.wifi_model import (
    AdapterReading,
    Bss,
    BusyResult,
    ScanResult,
    WifiLink,
    WifiReading,
    normalise_mac,
    number,
)

REDACTED = "<redacted>"
WITHHELD = "macOS withholds the SSID (this process has no Location Services permission)"


@dataclass
class Node:
    value: str = ""
    children: list[tuple[str, Node]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        return next((n.value for k, n in self.children if k == key), None)

    def section(self, key: str) -> Node | None:
        return next((n for k, n in self.children if k == key), None)


def parse_tree(text: str) -> Node:
    """Indented ``Key: value`` / ``Section:`` lines as a tree. A line ending in ``:`` is a
    section (an SSID may itself contain ``": "``); children keep their order and may
    repeat (two networks of one name on different channels)."""
    root = Node()
    stack: list[tuple[int, Node]] = [(-1, root)]
    for line in text.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        s = line.strip()
        if s.endswith(":"):
            key, value = s[:-1], ""
        else:
            key, _, value = s.partition(": ")
        while stack[-1][0] >= indent:
            stack.pop()
        node = Node(value.strip())
        stack[-1][1].children.append((key.strip(), node))
        stack.append((indent, node))
    return root


_CHANNEL = re.compile(r"^(\d+)\s*\((\d+(?:\.\d+)?)GHz(?:,\s*(\d+)MHz)?\)")


def _band(ghz: str) -> float | None:
    return {"2": 2.4, "2.4": 2.4, "5": 5.0, "6": 6.0}.get(ghz)


def _network_fields(node: Node, target: WifiLink | Bss) -> None:
    match = _CHANNEL.match(node.get("Channel") or "")
    if match:
        target.channel, target.band_ghz = int(match[1]), _band(match[2])
        if isinstance(target, WifiLink) and match[3]:
            target.width_mhz, target.width_method = int(match[3]), "system_profiler Channel"
    sn = re.match(r"(-?\d+) dBm / (-?\d+) dBm", node.get("Signal / Noise") or "")
    if sn and isinstance(target, WifiLink):
        target.rssi_dbm, target.rssi_method = float(sn[1]), "system_profiler Signal"
        target.noise_dbm, target.noise_method = float(sn[2]), "system_profiler Noise"
    elif sn and isinstance(target, Bss):
        target.signal_dbm = float(sn[1])


def parse_airport(text: str) -> list[tuple[WifiLink, list[Bss]]]:
    """(link, networks in range) for each ``enN`` interface of SPAirPortDataType."""
    tree = parse_tree(text)
    wifi = tree.section("Wi-Fi")
    interfaces = wifi.section("Interfaces") if wifi else None
    out: list[tuple[WifiLink, list[Bss]]] = []
    for name, node in interfaces.children if interfaces else []:
        if not re.fullmatch(r"en\d+", name):
            continue
        status = node.get("Status") or ""
        current = node.section("Current Network Information")
        link = WifiLink(name, status == "Connected" and current is not None
                        and bool(current.children), "system_profiler SPAirPortDataType",
                        state=status or "unknown")
        networks: list[Bss] = []
        if link.connected and current is not None:
            ssid, net = current.children[0]
            link.ssid = None if ssid == REDACTED else ssid
            link.ssid_withheld = WITHHELD if ssid == REDACTED else None
            _network_fields(net, link)
            link.tx_rate_mbps = number(net.get("Transmit Rate"))
            link.fill_channel()
            link.notes.append("rx_rate_mbps not measured: macOS reports the transmit rate only")
            networks.append(Bss(None, link.ssid, channel=link.channel, band_ghz=link.band_ghz,
                                signal_dbm=link.rssi_dbm, associated=True))
        others = node.section("Other Local Wi-Fi Networks")
        for ssid, net in others.children if others else []:
            bss = Bss(None, None if ssid == REDACTED else ssid)
            _network_fields(net, bss)
            networks.append(bss)
        out.append((link, networks))
    return out


_WDUTIL_CHANNEL = re.compile(r"^(\d)g(\d+)/(\d+)$")


def parse_wdutil(text: str) -> dict[str, str]:
    """The WIFI section of ``wdutil info`` as {key: value}::

        WIFI
        ————————————————————————————————————————
            Interface Name       : en0
            BSSID                : 0c:8d:db:11:22:33
            RSSI                 : -52 dBm
            CCA                  : 23 %
            Channel              : 5g36/80
    """
    values: dict[str, str] = {}
    section = ""
    for line in text.splitlines():
        s = line.strip()
        if re.fullmatch(r"[A-Z][A-Z0-9 ]+", s):
            section = s
            continue
        key, sep, val = s.partition(" : ")
        if section == "WIFI" and sep and key.strip():
            values.setdefault(key.strip(), val.strip())
    return values


def apply_wdutil(link: WifiLink, values: dict[str, str]) -> BusyResult | None:
    """Enrich ``link`` with wdutil's BSSID, RSSI, noise, rate and channel; CCA as busy %."""
    link.source = "wdutil info"
    bssid = normalise_mac(values.get("BSSID"))
    if bssid:
        link.bssid = bssid
    ssid = values.get("SSID")
    if ssid and ssid not in ("None", REDACTED) and link.ssid is None and not link.ssid_withheld:
        link.ssid = ssid
    for key, attr, method_attr in (("RSSI", "rssi_dbm", "rssi_method"),
                                   ("Noise", "noise_dbm", "noise_method")):
        value = number(values.get(key))
        if value is not None and value < 0:
            setattr(link, attr, value)
            setattr(link, method_attr, f"wdutil {key}")
    rate = number(values.get("Tx Rate"))
    if rate is not None:
        link.tx_rate_mbps = rate
    match = _WDUTIL_CHANNEL.match(values.get("Channel", ""))
    if match:
        link.band_ghz = {"2": 2.4, "5": 5.0, "6": 6.0}.get(match[1])
        link.channel, link.width_mhz = int(match[2]), int(match[3])
        link.width_method = "wdutil Channel"
        link.freq_mhz = None
        link.fill_channel()
    cca = number(values.get("CCA"))
    if cca is not None and 0 <= cca <= 100:
        return BusyResult(cca, "wdutil CCA (the radio's clear-channel-assessment busy share)")
    return None


def read_macos(runner: Runner, interface: str | None = None, is_root: bool = False
               ) -> WifiReading:
    try:
        out = runner(["system_profiler", "SPAirPortDataType"])
    except CommandError as exc:
        return WifiReading([], f"cannot run system_profiler: {exc}")
    parsed = parse_airport(out.stdout)
    if not parsed:
        if "Wi-Fi:" not in out.stdout:
            return WifiReading([], "no Wi-Fi adapter (system_profiler lists no Wi-Fi)"
                               if out.ok else f"system_profiler failed: {out.first_line()}")
        return WifiReading([], "system_profiler lists Wi-Fi but no enN interface "
                           "(unrecognised output)", failed=True)
    if interface:
        parsed = [(lk, n) for lk, n in parsed if lk.interface == interface]
        if not parsed:
            return WifiReading([], f"no Wi-Fi interface named {interface!r} (system_profiler)")
    wd: dict[str, str] = {}
    wd_reason = "wdutil info (CCA, BSSID) needs root"
    if is_root:
        try:
            wd_out = runner(["wdutil", "info"])
            wd = parse_wdutil(wd_out.stdout) if wd_out.ok else {}
            wd_reason = "" if wd else f"wdutil info gave no WIFI section ({wd_out.first_line()})"
        except CommandError as exc:
            wd_reason = str(exc)
    readings: list[AdapterReading] = []
    for link, networks in parsed:
        busy = None
        if wd and wd.get("Interface Name") == link.interface and link.connected:
            busy = apply_wdutil(link, wd)
        if link.connected and link.bssid is None:
            link.notes.append("bssid_hash not measured: system_profiler shows no BSSID "
                              "(wdutil info, as root, does)")
        scan = ScanResult(networks, "system_profiler SPAirPortDataType (networks in range)",
                          shows_elements=False)
        readings.append(AdapterReading(link, scan, None, busy, None if busy else (
            wd_reason or "wdutil info reported no CCA")))
    return WifiReading(readings)

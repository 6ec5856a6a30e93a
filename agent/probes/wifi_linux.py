"""Linux Wi-Fi: ``iw`` (nl80211) and ``/proc/net/wireless``.

Formats follow iw's own printf strings (iw 5.x/6.x ``interface.c``, ``link.c``,
``station.c``, ``scan.c``, ``survey.c``); iw 6 prints ``freq: 5180.0`` where 5.x printed
``freq: 5180``, and both are accepted. Commands used, none of which changes anything:

- ``iw dev``: adapters, their type (managed / monitor) and channel width;
- ``iw dev IF link``: association, SSID, frequency, signal, rx/tx bitrate;
- ``iw dev IF station dump``: the averaged signal (``signal avg``);
- ``/proc/net/wireless``: the noise floor where the driver reports it (-256 = none);
- ``iw dev IF scan dump``: the kernel's cached scan results (visible APs, each AP's BSS
  Load element); only as root and when nothing is cached, ``iw dev IF scan`` (a fresh
  scan briefly takes the radio off channel);
- ``iw dev IF survey dump`` twice, ``interval_s`` apart: channel busy % =
  Δ busy time / Δ active time on the in-use channel.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.probes.device_cmd import CommandError, CommandOutput, Runner, ToolMissing
from agent.probes.wifi_bssload import BssLoad
from agent.probes.wifi_model import (
    AdapterReading,
    Bss,
    BusyResult,
    ScanResult,
    WifiLink,
    WifiReading,
    band_of,
    channel_of,
    normalise_mac,
    number,
)

SCAN_MAX_AGE_MS = 60_000
"""Cached scan entries older than this are not counted as visible."""


@dataclass(frozen=True)
class IwInterface:
    name: str
    type: str
    freq_mhz: float | None = None
    width_mhz: int | None = None


def parse_iw_dev(text: str) -> list[IwInterface]:
    """``iw dev``::

        phy#0
        \tInterface wlp2s0
        \t\ttype managed
        \t\tchannel 36 (5180 MHz), width: 80 MHz, center1: 5210 MHz
    """
    found: list[IwInterface] = []
    name = kind = ""
    freq: float | None = None
    width: int | None = None

    def flush() -> None:
        if name:
            found.append(IwInterface(name, kind, freq, width))

    for line in text.splitlines():
        s = line.strip()
        if s.startswith(("phy#", "Unnamed/non-netdev")):
            flush()
            name = ""
        elif s.startswith("Interface "):
            flush()
            name, kind, freq, width = s.split(None, 1)[1], "", None, None
        elif s.startswith("type "):
            kind = s[5:].strip()
        elif s.startswith("channel "):
            match = re.match(r"channel \d+ \((\d+) MHz\)(?:, width: (\d+)(\+80)? MHz)?", s)
            if match:
                freq = float(match[1])
                width = int(match[2]) * (2 if match[3] else 1) if match[2] else None
    flush()
    return found


def parse_bitrate(text: str) -> tuple[float | None, int | None]:
    """``866.7 MBit/s VHT-MCS 9 80MHz short GI VHT-NSS 2`` -> (866.7, 80).

    iw prints a width flag only for 40/80/160/320 MHz (and 80P80), so none means 20 MHz.
    """
    match = re.match(r"\s*(\d+(?:\.\d+)?) MBit/s", text)
    rate = float(match[1]) if match else None
    if rate is None:
        return None, None
    width = re.search(r"\b(40|80|160|320)MHz\b|\b80P80MHz\b", text)
    if width is None:
        return rate, 20
    return rate, 160 if width[0] == "80P80MHz" else int(width[1])


def _field(text: str, label: str) -> str | None:
    match = re.search(rf"^\s*{re.escape(label)}:\s*(.*)$", text, re.MULTILINE)
    return match[1].strip() if match else None


def parse_iw_link(interface: str, text: str) -> WifiLink:
    """``iw dev IF link``: ``Not connected.`` or ``Connected to <bssid> (on IF)`` + fields."""
    head = re.search(r"^Connected to ([0-9a-fA-F:]{17})", text, re.MULTILINE)
    if head is None:
        state = "not connected" if "Not connected" in text else "unrecognised iw link output"
        return WifiLink(interface, False, "iw link", state=state)
    link = WifiLink(interface, True, "iw link", bssid=normalise_mac(head[1]))
    ssid = _field(text, "SSID")
    link.ssid = ssid if ssid else None
    link.freq_mhz = number(_field(text, "freq"))
    signal = _field(text, "signal")
    if signal is not None:
        link.rssi_dbm, link.rssi_method = number(signal), "iw link signal"
    rx = _field(text, "rx bitrate")
    tx = _field(text, "tx bitrate")
    link.rx_rate_mbps, rx_width = parse_bitrate(rx) if rx else (None, None)
    link.tx_rate_mbps, tx_width = parse_bitrate(tx) if tx else (None, None)
    link.width_mhz = max((w for w in (rx_width, tx_width) if w), default=None)
    link.width_method = "iw link bitrate flags (none = 20 MHz)"
    link.fill_channel()
    return link


def parse_station_signal_avg(text: str) -> float | None:
    """``signal avg:\\t-51 [-53, -55] dBm`` from ``iw dev IF station dump``."""
    return number(_field(text, "signal avg"))


def parse_proc_net_wireless(text: str) -> dict[str, tuple[float | None, float | None]]:
    """``/proc/net/wireless`` -> {interface: (level dBm, noise dBm)}; -256 and positive
    values (drivers that do not report dBm) become None::

         face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
         wlan0: 0000   58.  -52.  -256        0      0      0      0     12        0
    """
    out: dict[str, tuple[float | None, float | None]] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or len(parts) < 4:
            continue

        def dbm(token: str) -> float | None:
            value = number(token)
            return value if value is not None and -256 < value < 0 else None

        out[name.strip()] = (dbm(parts[2]), dbm(parts[3]))
    return out


def _ssid(text: str | None) -> str | None:
    """iw escapes SSIDs (``\\x00``); an empty or all-NUL SSID is a hidden network."""
    if not text or re.fullmatch(r"(\\x00)+", text):
        return None
    return text


def parse_iw_scan(text: str) -> list[Bss]:
    """``iw dev IF scan [dump]``: one ``BSS <mac>(on IF) [-- associated]`` block per AP::

        BSS 0c:8d:db:11:22:33(on wlp2s0) -- associated
        \tfreq: 5180
        \tsignal: -52.00 dBm
        \tlast seen: 20 ms ago
        \tSSID: SchoolNet
        \tBSS Load:
        \t\t * station count: 12
        \t\t * channel utilisation: 45/255
        \t\t * available admission capacity: 31250 [*32us]

    Entries last seen more than :data:`SCAN_MAX_AGE_MS` ago are dropped.
    """
    bsses: list[Bss] = []
    blocks = re.split(r"^BSS (?=[0-9a-fA-F]{2}:)", text, flags=re.MULTILINE)[1:]
    for block in blocks:
        head = block.splitlines()[0]
        bss = Bss(normalise_mac(head[:17]), associated="-- associated" in head)
        age = re.search(r"last seen: (\d+) ms ago", block)
        if age and int(age[1]) > SCAN_MAX_AGE_MS:
            continue
        bss.ssid = _ssid(_field(block, "SSID"))
        bss.freq_mhz = number(_field(block, "freq"))
        bss.signal_dbm = number(_field(block, "signal"))
        if bss.freq_mhz is not None:
            bss.channel, bss.band_ghz = channel_of(bss.freq_mhz), band_of(bss.freq_mhz)
        stations = re.search(r"\* station count: (\d+)", block)
        util = re.search(r"\* channel utilisation: (\d+)/255", block)
        capacity = re.search(r"\* available admission capacity: (\d+)", block)
        if stations and util:
            bss.load = BssLoad(int(stations[1]), int(util[1]),
                               int(capacity[1]) if capacity else None)
        elif re.search(r"^\s*BSS Load:", block, re.MULTILINE):
            bss.load_problem = "iw printed a BSS Load element without station count and " \
                               "utilisation (malformed element)"
        bsses.append(bss)
    return bsses


@dataclass(frozen=True)
class SurveyEntry:
    freq_mhz: float
    in_use: bool
    active_ms: int | None
    busy_ms: int | None
    noise_dbm: float | None


def parse_iw_survey(text: str) -> list[SurveyEntry]:
    """``iw dev IF survey dump``: one ``Survey data from IF`` block per channel."""
    entries: list[SurveyEntry] = []
    for block in re.split(r"^Survey data from \S+\s*$", text, flags=re.MULTILINE)[1:]:
        freq = re.search(r"frequency:\s*(\d+) MHz( \[in use\])?", block)
        if not freq:
            continue

        def ms(label: str, blk: str = block) -> int | None:
            match = re.search(rf"^\s*{label}:\s*(\d+) ms", blk, re.MULTILINE)
            return int(match[1]) if match else None

        entries.append(SurveyEntry(float(freq[1]), bool(freq[2]), ms("channel active time"),
                                   ms("channel busy time"), number(_field(block, "noise"))))
    return entries


def survey_busy(first: list[SurveyEntry], second: list[SurveyEntry] | None
                ) -> tuple[BusyResult | None, float | None, str | None]:
    """(busy, in-use channel noise, reason) from one or two survey dumps.

    With two dumps the busy share is Δbusy/Δactive over the interval; if the counters did
    not advance (some drivers update only during scans) the cumulative ratio is used and
    the method says so.
    """
    now = next((e for e in (second or first) if e.in_use), None)
    if now is None:
        return None, None, "survey dump has no channel marked [in use]"
    if now.active_ms is None or now.busy_ms is None:
        return None, now.noise_dbm, "the driver reports no channel active/busy time"
    before = next((e for e in first if e.in_use and e.freq_mhz == now.freq_mhz), None)
    if second is not None and before is not None and before.active_ms is not None \
            and before.busy_ms is not None and now.active_ms > before.active_ms:
        d_active, d_busy = now.active_ms - before.active_ms, now.busy_ms - before.busy_ms
        if 0 <= d_busy <= d_active:
            return BusyResult(round(d_busy / d_active * 100, 1),
                              f"iw survey dump Δbusy/Δactive over {d_active} ms"), \
                now.noise_dbm, None
    if now.active_ms > 0 and 0 <= now.busy_ms <= now.active_ms:
        return BusyResult(round(now.busy_ms / now.active_ms * 100, 1),
                          f"iw survey dump busy/active, cumulative over {now.active_ms} ms "
                          "(counters did not advance between samples)"), now.noise_dbm, None
    return None, now.noise_dbm, (f"survey counters unusable (busy {now.busy_ms} ms, active "
                                 f"{now.active_ms} ms)")


def _iw(runner: Runner, *args: str) -> CommandOutput:
    return runner(["iw", *args])


def _problem(out: CommandOutput, what: str) -> str:
    return f"{what} failed: {out.first_line()}"


def read_linux(runner: Runner, proc_root: Path = Path("/proc"), interface: str | None = None,
               is_root: bool = False, survey_interval_s: float = 1.0,
               sleep: Callable[[float], None] = time.sleep) -> WifiReading:
    """Everything the Linux tools say about each managed Wi-Fi adapter."""
    try:
        dev = _iw(runner, "dev")
    except ToolMissing:
        return WifiReading([], "iw is not installed (install the 'iw' package to measure "
                               "Wi-Fi on Linux)")
    except CommandError as exc:
        return WifiReading([], f"cannot list Wi-Fi adapters: {exc}")
    if not dev.ok:
        if "nl80211 not found" in dev.stderr + dev.stdout:
            return WifiReading([], "no Wi-Fi adapter: this kernel has no nl80211 "
                                   "(cfg80211) support")
        return WifiReading([], _problem(dev, "iw dev"), failed=True)
    ifaces = [i for i in parse_iw_dev(dev.stdout) if i.type == "managed"]
    if interface:
        ifaces = [i for i in ifaces if i.name == interface]
        if not ifaces:
            return WifiReading([], f"no managed Wi-Fi interface named {interface!r} "
                                   "(iw dev)")
    if not ifaces:
        return WifiReading([], "no Wi-Fi adapter found (iw dev lists no managed interface)")
    try:
        wireless = parse_proc_net_wireless((proc_root / "net" / "wireless").read_text())
    except OSError:
        wireless = {}
    return WifiReading([_read_adapter(runner, i, wireless.get(i.name), is_root,
                                      survey_interval_s, sleep) for i in ifaces])


def _read_adapter(runner: Runner, iface: IwInterface,
                  proc: tuple[float | None, float | None] | None, is_root: bool,
                  interval_s: float, sleep: Callable[[float], None]) -> AdapterReading:
    name = iface.name
    try:
        out = _iw(runner, "dev", name, "link")
        link = parse_iw_link(name, out.stdout) if out.ok else WifiLink(
            name, False, "iw link", state=_problem(out, "iw link"))
    except CommandError as exc:
        link = WifiLink(name, False, "iw link", state=str(exc))
    reading = AdapterReading(link)
    if link.connected:
        if iface.width_mhz:  # iw dev's channel width beats the bitrate flags
            link.width_mhz, link.width_method = iface.width_mhz, "iw dev channel width"
        try:
            sta = _iw(runner, "dev", name, "station", "dump")
            avg = parse_station_signal_avg(sta.stdout) if sta.ok else None
            if avg is not None:
                link.rssi_dbm, link.rssi_method = avg, "iw station dump signal avg"
        except CommandError as exc:
            link.notes.append(f"station dump: {exc}")
        if proc is not None and proc[1] is not None:
            link.noise_dbm, link.noise_method = proc[1], "/proc/net/wireless noise"
    reading.scan, reading.scan_reason = _scan(runner, name, is_root)
    reading.busy, noise, reading.busy_reason = _survey(runner, name, interval_s, sleep)
    if link.connected and link.noise_dbm is None and noise is not None:
        link.noise_dbm, link.noise_method = noise, "iw survey dump noise (in-use channel)"
    return reading


def _scan(runner: Runner, name: str, is_root: bool) -> tuple[ScanResult | None, str | None]:
    try:
        out = _iw(runner, "dev", name, "scan", "dump")
        if out.ok and parse_iw_scan(out.stdout):
            return ScanResult(parse_iw_scan(out.stdout), "iw scan dump (cached, <= 60 s old)",
                              True), None
        if not is_root:
            return None, ("no cached scan results, and a fresh scan (iw scan) needs root"
                          if out.ok else _problem(out, "iw scan dump"))
        fresh = _iw(runner, "dev", name, "scan")
    except CommandError as exc:
        return None, str(exc)
    if not fresh.ok:
        return None, _problem(fresh, "iw scan")
    return ScanResult(parse_iw_scan(fresh.stdout), "iw scan", True), None


def _survey(runner: Runner, name: str, interval_s: float, sleep: Callable[[float], None]
            ) -> tuple[BusyResult | None, float | None, str | None]:
    try:
        first = _iw(runner, "dev", name, "survey", "dump")
        if not first.ok:
            return None, None, _problem(first, "iw survey dump")
        entries = parse_iw_survey(first.stdout)
        if not entries:
            return None, None, "iw survey dump printed no survey data (driver without survey)"
        sleep(interval_s)
        second = _iw(runner, "dev", name, "survey", "dump")
    except CommandError as exc:
        return None, None, str(exc)
    return survey_busy(entries, parse_iw_survey(second.stdout) if second.ok else None)

"""Wi-Fi probe: the link a classroom PC has, and how crowded its air is.

Per Wi-Fi adapter (target: the OS's interface name) four results:

- ``wifi``: ``ssid_hash``, ``bssid_hash`` (HMAC-SHA256 with the site salt; the names never
  leave the PC), ``band_ghz``, ``channel``, ``width_mhz``, ``rssi_dbm``, ``noise_dbm``,
  ``snr_db``, ``signal_pct``, ``tx_rate_mbps``, ``rx_rate_mbps``; skipped when the adapter
  is not connected;
- ``wifi_bss_load``: the connected AP's BSS Load element (``bss_station_count``,
  ``bss_channel_utilisation_pct`` = value/255×100), or skipped with "AP does not advertise
  BSS Load" / why it cannot be known on this OS;
- ``wifi_scan``: ``visible_aps`` and ``co_channel_aps`` (other BSSIDs on our channel);
- ``wifi_channel_busy``: ``channel_busy_pct`` (Linux survey, macOS CCA as root).

Plus ``wifi_monitor`` (Linux monitor-mode sniffer, :mod:`agent.probes.wifi_monitor`).
``classprobe probe wifi --pcap FILE`` analyses a capture instead
(:mod:`agent.probes.wifi_pcap`). OS readers: :mod:`~agent.probes.wifi_linux`,
:mod:`~agent.probes.wifi_windows`, :mod:`~agent.probes.wifi_macos`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.config import AgentConfig
from agent.probes.device_cmd import Runner, run_command, running_as_root
from agent.probes.results import ResultBuilder, print_results, text, value
from agent.probes.wifi_model import (
    HASH_METHOD,
    AdapterReading,
    WifiLink,
    WifiReading,
    hash_identifier,
)
from agent.probes.wifi_monitor import Sniffer, monitor_results
from agent.wire import ProbeResult

NAME = "wifi"
EXIT_USAGE = 2


def read_wifi(platform: str, runner: Runner, proc_root: Path = Path("/proc"),
              interface: str | None = None, is_root: bool = False,
              fresh_scan: bool = True) -> WifiReading:
    """The OS reader for ``platform`` (``sys.platform`` values)."""
    if platform.startswith("linux"):
        from agent.probes.wifi_linux import read_linux

        return read_linux(runner, proc_root, interface, is_root and fresh_scan)
    if platform == "win32":
        from agent.probes.wifi_windows import read_windows

        return read_windows(runner, interface)
    if platform == "darwin":
        from agent.probes.wifi_macos import read_macos

        return read_macos(runner, interface, is_root)
    return WifiReading([], f"Wi-Fi readers exist for Linux, Windows and macOS, not {platform}")


def link_result(link: WifiLink, salt: str) -> ProbeResult:
    r = ResultBuilder(NAME, link.interface)
    if not link.connected:
        return r.skipped(f"{link.interface} is not connected ({link.source}: {link.state})")
    src = link.source
    if not salt:
        r.note("ssid_hash/bssid_hash not reported: no site_salt configured")
    else:
        if link.ssid:
            r.add(text("ssid_hash", HASH_METHOD, hash_identifier(salt, link.ssid)))
        else:
            r.note(f"ssid_hash not measured: {link.ssid_withheld or 'the SSID is unknown'}")
        if link.bssid:
            r.add(text("bssid_hash", HASH_METHOD, hash_identifier(salt, link.bssid)))
    for metric, number, method in (
            ("band_ghz", link.band_ghz, link.band_method or src),
            ("channel", link.channel, src),
            ("width_mhz", link.width_mhz, link.width_method or src),
            ("rssi_dbm", link.rssi_dbm, link.rssi_method or src),
            ("noise_dbm", link.noise_dbm, link.noise_method or src),
            ("signal_pct", link.signal_pct, src),
            ("tx_rate_mbps", link.tx_rate_mbps, src), ("rx_rate_mbps", link.rx_rate_mbps, src)):
        if number is not None:
            r.add(value(metric, method, number))
    if link.rssi_dbm is not None and link.noise_dbm is not None:
        r.add(value("snr_db", "rssi_dbm - noise_dbm", link.rssi_dbm - link.noise_dbm))
    elif link.rssi_dbm is not None:
        r.note("snr_db not measured: no noise floor")
    for note in link.notes:
        r.note(note)
    return r.ok()


def bss_load_result(a: AdapterReading) -> ProbeResult:
    link = a.link
    r = ResultBuilder("wifi_bss_load", link.interface)
    if not link.connected:
        return r.skipped(f"{link.interface} is not connected")
    if a.scan is None:
        return r.skipped(f"BSS Load not measured: {a.scan_reason}")
    if not a.scan.shows_elements:
        return r.skipped(f"BSS Load not available: {a.scan.method} does not show the APs' "
                         "information elements")
    if link.bssid is None:
        return r.skipped("BSS Load not measured: the connected AP's BSSID is unknown")
    bss = next((b for b in a.scan.bsses if b.bssid == link.bssid), None)
    if bss is None:
        return r.skipped(f"BSS Load not measured: the connected AP is not in the scan "
                         f"results ({a.scan.method})")
    if bss.load_problem:
        return r.failed(f"BSS Load not read: {bss.load_problem}")
    if bss.load is None:
        return r.skipped("AP does not advertise BSS Load")
    method = f"BSS Load element ({a.scan.method})"
    r.add(value("bss_station_count", method, bss.load.station_count))
    r.add(value("bss_channel_utilisation_pct", f"{method}, value/255",
                bss.load.utilisation_pct))
    return r.ok()


def scan_result(a: AdapterReading) -> ProbeResult:
    link = a.link
    r = ResultBuilder("wifi_scan", link.interface)
    if a.scan is None:
        return r.skipped(f"no scan: {a.scan_reason}")
    bsses = a.scan.bsses
    r.add(value("visible_aps", f"{a.scan.method}: entries listed", len(bsses)))
    if link.connected and link.channel is not None:
        others = [b for b in bsses if b.same_channel(link.channel, link.band_ghz)
                  and not b.associated and not (link.bssid and b.bssid == link.bssid)]
        r.add(value("co_channel_aps", f"{a.scan.method}: others on channel {link.channel}",
                    len(others)))
    else:
        r.note("co_channel_aps not measured: not connected, so no channel of our own")
    return r.ok()


def busy_result(a: AdapterReading) -> ProbeResult:
    r = ResultBuilder("wifi_channel_busy", a.link.interface)
    if a.busy is None:
        return r.skipped(f"channel busy time not measured: {a.busy_reason}")
    r.add(value("channel_busy_pct", a.busy.method, a.busy.busy_pct))
    return r.ok()


def reading_results(reading: WifiReading, salt: str) -> list[ProbeResult]:
    if reading.reason is not None:
        r = ResultBuilder(NAME)
        return [r.failed(reading.reason) if reading.failed else r.skipped(reading.reason)]
    out: list[ProbeResult] = []
    for a in reading.adapters:
        out += [link_result(a.link, salt), bss_load_result(a), scan_result(a), busy_result(a)]
    return out


def collect(cfg: AgentConfig, platform: str = sys.platform, runner: Runner = run_command,
            proc_root: Path = Path("/proc"), is_root: bool | None = None,
            sniffer: Sniffer | None = None) -> list[ProbeResult]:
    root = running_as_root() if is_root is None else is_root
    reading = read_wifi(platform, runner, proc_root, cfg.wifi_interface or None, root,
                        cfg.wifi_fresh_scan)
    results = reading_results(reading, cfg.site_salt)
    if platform.startswith("linux"):
        results += monitor_results(cfg.monitor_interface, cfg.monitor_seconds, cfg.site_salt,
                                   runner, root, sniffer)
    elif cfg.monitor_interface:
        results.append(ResultBuilder("wifi_monitor", cfg.monitor_interface).skipped(
            "monitor-mode sniffing runs on Linux only"))
    return results


def run(cfg: AgentConfig) -> list[ProbeResult]:
    return collect(cfg)


def add_wifi_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``classprobe probe wifi``."""
    parser.add_argument("--interface", default=None,
                        help="Wi-Fi adapter to measure (default: all, or wifi_interface)")
    parser.add_argument("--pcap", type=Path, default=None, metavar="FILE",
                        help="analyse an 802.11 capture (pcap/pcapng, RadioTap) instead")
    parser.add_argument("--monitor", default=None, metavar="IF",
                        help="also sniff on this monitor-mode interface (Linux, root)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="monitor sniffing time (default monitor_seconds, 10)")
    parser.add_argument("--config", type=Path, default=None,
                        help="agent config for site_salt and Wi-Fi settings (default "
                             "$CLASSPROBE_AGENT_CONFIG or ~/.config/classprobe/agent.toml)")
    parser.add_argument("--json", action="store_true")


def run_wifi_cli(args: argparse.Namespace, runner: Runner = run_command,
                 platform: str = sys.platform) -> int:
    """``classprobe probe wifi``: print results (text or ``--json``); exit code 0 ok or
    skipped, 1 something failed, 2 bad arguments or configuration."""
    from dataclasses import replace

    from agent.config import ConfigError, default_config_path, load_config

    if args.seconds is not None and args.seconds <= 0:
        print(f"classprobe: --seconds must be positive, got {args.seconds:g}", file=sys.stderr)
        return EXIT_USAGE
    try:
        cfg = load_config(args.config or default_config_path())
    except ConfigError as exc:
        print(f"classprobe: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cfg = replace(cfg, wifi_interface=args.interface or cfg.wifi_interface,
                  monitor_interface=args.monitor or cfg.monitor_interface,
                  monitor_seconds=args.seconds or cfg.monitor_seconds)
    if args.pcap is not None:
        from agent.probes.wifi_pcap import analyse_pcap

        results = analyse_pcap(args.pcap, cfg.site_salt)
    else:
        results = collect(cfg, platform=platform, runner=runner)
    return print_results(results, args.json)

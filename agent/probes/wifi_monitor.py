"""Time-boxed monitor-mode sniffing on Linux (scapy), feeding the same analysis as a pcap.

Runs only when ``monitor_interface`` is configured, the agent is root, ``iw dev`` says the
interface is in monitor mode, and scapy is installed; otherwise the result is skipped with
the reason. Each frame is reduced to its header fields (:class:`FrameInfo`) in the
callback and not stored (``store=False``), so no payload is kept; station addresses are
only counted. Putting an interface into monitor mode is left to the school's IT (it
disconnects that adapter from the network).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.probes.device_cmd import CommandError, Runner, raw_sockets_allowed
from agent.probes.results import ResultBuilder
from agent.probes.wifi_linux import parse_iw_dev
from agent.probes.wifi_pcap import CaptureStats, stats_results
from agent.wire import ProbeResult

PROBE = "wifi_monitor"
Sniffer = Callable[..., Any]
"""``sniffer(iface=..., timeout=..., store=False, prn=callback)``: scapy's ``sniff``."""


def _default_sniffer() -> Sniffer:
    from scapy.sendrecv import sniff

    return sniff


def monitor_results(interface: str, seconds: float, salt: str, runner: Runner,
                    is_root: bool | None = None, sniffer: Sniffer | None = None
                    ) -> list[ProbeResult]:
    r = ResultBuilder(PROBE, interface or None)
    if not interface:
        return [r.skipped("no monitor_interface configured (a Linux adapter already in "
                          "monitor mode)")]
    if not (raw_sockets_allowed() if is_root is None else is_root):
        return [r.skipped("monitor-mode sniffing needs root or CAP_NET_RAW")]
    try:
        dev = runner(["iw", "dev"])
    except CommandError as exc:
        return [r.skipped(f"cannot check the interface type: {exc}")]
    kinds = {i.name: i.type for i in parse_iw_dev(dev.stdout)} if dev.ok else {}
    if kinds.get(interface) != "monitor":
        found = kinds.get(interface)
        return [r.skipped(f"{interface} is not in monitor mode (iw dev: "
                          f"{'type ' + found if found else 'no such interface'})")]
    if sniffer is None:
        try:
            sniffer = _default_sniffer()
        except ImportError:
            return [r.skipped("scapy is not installed (pip install 'classprobe[agent-extra]')")]
    from agent.probes.wifi_frames import frame_from_packet

    stats = CaptureStats()

    def keep_header(pkt: Any) -> None:
        wire_len = getattr(pkt, "wirelen", None) or len(pkt)
        frame = frame_from_packet(pkt, float(pkt.time), int(wire_len))
        if frame is not None:
            stats.add(frame)

    try:
        sniffer(iface=interface, timeout=seconds, store=False, prn=keep_header)
    except OSError as exc:
        return [r.failed(f"sniffing on {interface} failed: {exc}")]
    if stats.frames == 0:
        return [r.failed(f"no 802.11 frame received on {interface} in {seconds:g} s")]
    return stats_results(stats, PROBE, salt, f"monitor {seconds:g} s", target=interface)

"""The probes the agent runs, listed explicitly (no directory scanning).

A probe is a function ``run(cfg) -> list[ProbeResult]``: one result per target (or per
thing measured), each ok / failed / skipped with a reason. Probes import heavy modules
(httpx, psutil) inside the functions that use them, so importing this package is cheap.

``device`` is the full inventory (run about daily); ``load`` the cheap sample of how busy
the PC is (about every minute, with ``wifi``). Which probes run when is
:data:`agent.schedule.TASK_PROBES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.config import AgentConfig
from agent.probes import bandwidth, device, latency, load, path, wifi
from agent.wire import ProbeResult


@dataclass(frozen=True)
class ProbeSpec:
    name: str
    run: Callable[[AgentConfig], list[ProbeResult]]
    summary: str


PROBES: tuple[ProbeSpec, ...] = (
    ProbeSpec(device.NAME, device.run,
              "CPU, memory, disk, OS and support, battery, screens, browsers, NICs, load"),
    ProbeSpec(load.NAME, load.run,
              "CPU busy %, RAM used %, NIC traffic rates, battery charge (cheap, no commands)"),
    ProbeSpec(wifi.NAME, wifi.run,
              "Wi-Fi link, BSS Load, visible/co-channel APs, channel busy, monitor"),
    ProbeSpec(latency.NAME, latency.run, "DNS, TCP, TLS, HTTP TTFB and ICMP per target"),
    ProbeSpec(path.NAME, path.probe,
              "TLS interception, blocking, WebSocket hold, STUN, proxy, traceroute"),
    ProbeSpec(bandwidth.NAME, bandwidth.run, "download/upload goodput against the collector"),
)

BY_NAME = {spec.name: spec for spec in PROBES}

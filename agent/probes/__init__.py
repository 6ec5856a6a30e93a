"""The probes the agent runs, listed explicitly (no directory scanning).

A probe is a function ``run(cfg) -> list[ProbeResult]``: one result per target (or per
thing measured), each ok / failed / skipped with a reason. Each probe's module is imported
when the probe first runs, and probes import heavy modules (httpx, psutil, scapy) inside
the functions that use them: a worker that samples ``load`` and ``wifi`` every minute must
not pay for loading the path and bandwidth code (the footprint benchmark measured 0.25 s
of CPU per worker for importing every probe module up front).

``device`` is the full inventory (run about daily); ``load`` the cheap sample of how busy
the PC is (about every minute, with ``wifi``). Which probes run when is
:data:`agent.schedule.TASK_PROBES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from agent.config import AgentConfig
from agent.wire import ProbeResult


@dataclass(frozen=True)
class ProbeSpec:
    name: str
    run: Callable[[AgentConfig], list[ProbeResult]]
    summary: str


def lazy(module: str, entry: str = "run") -> Callable[[AgentConfig], list[ProbeResult]]:
    """``agent.probes.<module>.<entry>``, imported when it is first called."""

    def run(cfg: AgentConfig) -> list[ProbeResult]:
        fn: Callable[[AgentConfig], list[ProbeResult]] = getattr(
            importlib.import_module(f"agent.probes.{module}"), entry)
        return fn(cfg)

    run.__qualname__ = f"lazy({module}.{entry})"
    return run


PROBES: tuple[ProbeSpec, ...] = (
    ProbeSpec("device", lazy("device"),
              "CPU, memory, disk, OS and support, battery, screens, browsers, NICs, load"),
    ProbeSpec("load", lazy("load"),
              "CPU busy %, RAM used %, NIC traffic rates, battery charge (cheap, no commands)"),
    ProbeSpec("wifi", lazy("wifi"),
              "Wi-Fi link, BSS Load, visible/co-channel APs, channel busy, monitor"),
    ProbeSpec("latency", lazy("latency"), "DNS, TCP, TLS, HTTP TTFB and ICMP per target"),
    ProbeSpec("path", lazy("path", "probe"),
              "TLS interception, blocking, WebSocket hold, STUN, proxy, traceroute"),
    ProbeSpec("bandwidth", lazy("bandwidth"), "download/upload goodput against the collector"),
    ProbeSpec("traceroute", lazy("path", "trace"),
              "hops and per-hop RTT to each path target's host (scapy; daily)"),
)

BY_NAME = {spec.name: spec for spec in PROBES}

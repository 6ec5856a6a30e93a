"""Load probe: how busy the classroom PC is right now. Cheap: it runs about every minute.

Results: ``load`` (``cpu_busy_pct``, ``ram_used_pct``), ``battery`` (``battery_pct``,
``battery_plugged``; skipped on a desktop) and one ``nic`` result per interface that is up
and not loopback (``nic_rx_mbps``/``nic_tx_mbps``: what the PC really moves during the
lesson). The full inventory (models, OS, browsers, screens, battery health, which NIC is
Wi-Fi) is the ``device`` probe's, once a day.

Everything comes from psutil counters; no OS command is started. CPU busy and the NIC
rates are measured over the same single wait of :data:`SAMPLE_S` seconds.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.config import AgentConfig
from agent.probes.device_battery import battery
from agent.probes.device_nics import (
    Counters,
    CountersFn,
    NicStat,
    StatsFn,
    describe_nics,
    psutil_nic_counters,
    psutil_nic_stats,
)
from agent.probes.results import ResultBuilder, print_results, value
from agent.wire import ProbeResult

NAME = "load"
SAMPLE_S = 1.0
"""The one wait: CPU busy % and NIC rates are deltas over it."""


@dataclass(frozen=True)
class Sources:
    """Where the load readings come from; tests replace each one."""

    cpu_percent: Callable[[], float]
    """Busy % since the previous call (``psutil.cpu_percent(interval=None)``)."""
    memory_pct: Callable[[], float]
    battery: Callable[[], Any]
    """``psutil.sensors_battery()``: None without a battery."""
    stats: StatsFn = psutil_nic_stats
    counters: CountersFn = psutil_nic_counters
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def psutil_sources() -> Sources:
    import psutil

    return Sources(
        cpu_percent=lambda: float(psutil.cpu_percent(interval=None)),
        memory_pct=lambda: float(psutil.virtual_memory().percent),
        battery=(psutil.sensors_battery if hasattr(psutil, "sensors_battery")
                 else lambda: None))


def sample(sources: Sources, interval_s: float | None = None) -> list[ProbeResult]:
    """The load, battery and per-NIC results, measured over one wait of ``interval_s``
    (default :data:`SAMPLE_S`)."""
    interval_s = SAMPLE_S if interval_s is None else interval_s
    r = ResultBuilder(NAME)
    up = sources.stats()
    sources.cpu_percent()  # starts psutil's busy measurement; its own value is meaningless
    t0, before = sources.clock(), sources.counters()
    sources.sleep(interval_s)
    after, t1 = sources.counters(), sources.clock()
    busy = sources.cpu_percent()
    seconds = t1 - t0
    r.add(value("cpu_busy_pct", f"psutil.cpu_percent over {seconds:.2f} s", round(busy, 1)))
    r.add(value("ram_used_pct", "psutil.virtual_memory", round(sources.memory_pct(), 1)))
    return [r.ok(), battery(sources.battery()), *nic_load(up, before, after, seconds)]


def nic_load(up: Mapping[str, NicStat], before: Mapping[str, Counters],
             after: Mapping[str, Counters], seconds: float) -> list[ProbeResult]:
    """One ``nic`` result per interface up (not loopback): its receive/transmit rates."""
    infos = describe_nics(up, before, after, seconds, wireless=None, virtual=set())
    if not infos:
        return [ResultBuilder("nic").skipped("no network interface is up (besides loopback)")]
    results = []
    for info in infos:
        r = ResultBuilder("nic", info.name)
        if info.rate is None:
            r.note("nic_rx_mbps/nic_tx_mbps not measured: no byte counters for this NIC")
        elif info.rate.rx_mbps is None or info.rate.tx_mbps is None:
            r.note(f"nic_rx_mbps/nic_tx_mbps not measured: {info.rate.note}")
        else:
            method = f"psutil.net_io_counters delta over {seconds:.2f} s"
            r.add(value("nic_rx_mbps", method, info.rate.rx_mbps),
                  value("nic_tx_mbps", method, info.rate.tx_mbps))
        results.append(r.ok())
    return results


def run(cfg: AgentConfig) -> list[ProbeResult]:
    return sample(psutil_sources())


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``classprobe probe load``."""
    parser.add_argument("--json", action="store_true")


def run_load_cli(args: argparse.Namespace, sources: Sources | None = None) -> int:
    """``classprobe probe load``: print the load results; exit 1 if one failed."""
    return print_results(sample(sources or psutil_sources()), args.json)

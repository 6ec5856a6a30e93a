"""The passive sample (device load, NIC rates, Wi-Fi), taken inside the supervisor.

Every other measurement runs in a worker process (:mod:`agent.worker`) so that the idle
supervisor holds nothing a probe needs. The passive task is the exception because of its
cadence: once a minute in lessons. A worker costs about 0.2 s of CPU just to start Python
and import the agent, and 58 of them an hour were two thirds of the agent's CPU
(``benchmarks/footprint.py``: 0.63 % of a core against the 0.5 % goal). The passive
probes need nothing the supervisor lacks: the load probe reads psutil counters (psutil is
loaded already) and the Wi-Fi probe starts the OS's own tools (``iw``, ``netsh``,
``airport``), each with a timeout. Importing the two adds about 2 MB to the supervisor.

The exception to the exception: with ``monitor_interface`` set, the Wi-Fi probe sniffs
with scapy (tens of MB), which must not stay in the supervisor, so the passive task then
runs in a worker as before (:func:`runs_in_process`).

As in a worker, a probe that raises becomes a ``failed`` result
(:func:`agent.runner.run_probes`) and the report is committed to the spool; it travels
with the next upload. :class:`PassiveSampler` also remembers the last CPU readings: the
guardrails judge "busy" on them as well as on a fresh sample
(:func:`agent.guardrails.sustained_busy_pct`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from agent import __version__
from agent.config import AgentConfig
from agent.schedule import TASK_PROBES
from agent.spool import Spool
from agent.wire import Report

log = logging.getLogger(__name__)

TASKS = ("passive",)
PROBES = TASK_PROBES["passive"]


def runs_in_process(cfg: AgentConfig) -> bool:
    """Whether the supervisor takes the passive sample itself (no scapy sniffer wanted)."""
    return not cfg.monitor_interface


def sample(cfg: AgentConfig, spool: Spool, site_salt: str = "",
           clock_offset_s: float | None = None) -> Report:
    """Run the passive probes here and commit their report to ``spool``.

    ``site_salt`` is used when the config has none (the service's config may be read-only;
    the salt then comes from the collector's control answer). Raises OSError when the spool
    cannot be written."""
    from agent.probes import BY_NAME  # the probe modules load on the first sample
    from agent.runner import run_probes

    if not cfg.site_salt and site_salt:
        cfg = replace(cfg, site_salt=site_salt)
    results = run_probes(cfg, [BY_NAME[name] for name in PROBES])
    return spool.add(cfg.agent_id, __version__, results, trigger="scheduled",
                     clock_offset_s=clock_offset_s)


class PassiveSampler:
    """Takes the samples for the supervisor and keeps the last CPU busy readings."""

    def __init__(self, sample_fn: Callable[..., Report] = sample, keep: int = 5) -> None:
        self.sample_fn = sample_fn
        self.recent_cpu: deque[tuple[float, float]] = deque(maxlen=keep)
        """(monotonic time, cpu_busy_pct) of the last samples."""

    def take(self, cfg: AgentConfig, spool_root: Path, site_salt: str,
             clock_offset_s: float | None, now: float) -> Report | None:
        """One sample committed to the spool at ``spool_root``; None (logged) if the spool
        cannot be written."""
        try:
            spool = Spool(spool_root, cfg.spool_max_reports, cfg.spool_max_bytes)
            report = self.sample_fn(cfg, spool, site_salt, clock_offset_s)
        except OSError as exc:
            log.error("passive sample not recorded: the spool cannot be written: %s", exc)
            return None
        log.info("report %s: %s", report.report_id,
                 ", ".join(f"{r.probe} {r.status}" for r in report.results))
        self.recent_cpu.extend((now, m.value) for r in report.results if r.probe == "load"
                               for m in r.measurements
                               if m.metric == "cpu_busy_pct" and m.value is not None)
        return report

    def cpu_since(self, since: float) -> list[float]:
        """The CPU busy readings taken at or after monotonic time ``since``."""
        return [pct for at, pct in self.recent_cpu if at >= since]

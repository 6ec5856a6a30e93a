"""One agent cycle (probe → spool → upload) and the ``agent run`` loop around it.

The loop runs a cycle every ``interval_s``; between cycles it drains the spool, backing
off with full jitter while the collector is unreachable. The bandwidth probe, which
loads the school network, runs at most every ``bandwidth_interval_s``. The clock and the
wait are injected: ``wait(seconds)`` returns True when the agent was asked to stop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent import __version__
from agent.config import AgentConfig
from agent.probes import PROBES, ProbeSpec
from agent.runner import run_probes
from agent.spool import Spool
from agent.uploader import Backoff, Uploader, UploadOutcome
from agent.wire import Report

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


def collector_client(cfg: AgentConfig) -> httpx.Client:
    import httpx

    from agent.probes.net import ssl_context

    return httpx.Client(base_url=cfg.collector_url, timeout=cfg.timeout_s,
                        verify=ssl_context(cfg.ca_bundle),
                        headers={"User-Agent": f"classprobe-agent/{__version__}"})


@dataclass
class CycleOutcome:
    report: Report | None
    upload: UploadOutcome | None


def probe_and_spool(cfg: AgentConfig, spool: Spool, probes: tuple[ProbeSpec, ...] = PROBES,
                    skip: frozenset[str] = frozenset(),
                    stopped: Callable[[], bool] = lambda: False) -> Report | None:
    """Run the probes (stopping early if asked) and commit their report to the spool."""
    results = run_probes(cfg, probes, skip, stopped)
    if not results:
        return None
    return spool.add(cfg.agent_id, __version__, results)


class Loop:
    def __init__(self, cfg: AgentConfig, spool: Spool, uploader: Uploader, *,
                 wait: Callable[[float], bool], clock: Callable[[], float] = time.monotonic,
                 backoff: Backoff | None = None, probes: tuple[ProbeSpec, ...] = PROBES,
                 on_cycle: Callable[[CycleOutcome], None] | None = None,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        self.cfg = cfg
        self.spool = spool
        self.uploader = uploader
        self.wait = wait
        self.clock = clock
        self.backoff = backoff or Backoff(cfg.backoff_base_s, cfg.backoff_cap_s)
        self.probes = probes
        self.on_cycle = on_cycle
        self.should_stop = should_stop
        self._stop = False
        self._last_bandwidth: float | None = None

    @property
    def stop_requested(self) -> bool:
        """A stop seen by ``wait`` or signalled through ``should_stop`` (e.g. SIGTERM)."""
        return self._stop or self.should_stop()

    def _wait(self, seconds: float) -> bool:
        if seconds > 0 and self.wait(seconds):
            self._stop = True
        return self.stop_requested

    def _skip(self, now: float) -> frozenset[str]:
        due = (self._last_bandwidth is None
               or now - self._last_bandwidth >= self.cfg.bandwidth_interval_s)
        if due:
            self._last_bandwidth = now
            return frozenset()
        return frozenset({"bandwidth"})

    def drain_until(self, deadline: float) -> UploadOutcome:
        """Upload until the spool is empty or ``deadline``; back off on failures."""
        while True:
            outcome = self.uploader.drain()
            if outcome.ok:
                self.backoff.reset()
                return outcome
            log.warning("upload: %s; %d report(s) stay spooled", outcome.error, outcome.pending)
            delay = self.backoff.next_delay()
            now = self.clock()
            if now + delay >= deadline:
                return outcome
            log.info("upload: retrying in %.1f s", delay)
            if self._wait(delay):
                return outcome

    def run(self, cycles: int | None = None) -> int:
        """Run ``cycles`` cycles (None: until stopped); returns how many ran."""
        done = 0
        next_start = self.clock()
        while not self.stop_requested and (cycles is None or done < cycles):
            if self._wait(next_start - self.clock()):
                break
            try:
                report = probe_and_spool(self.cfg, self.spool, self.probes,
                                         skip=self._skip(self.clock()),
                                         stopped=lambda: self.stop_requested)
            except OSError as exc:  # disk full, spool removed...: keep the agent alive
                log.error("cannot write the report to the spool %s: %s", self.spool.root, exc)
                report = None
            done += 1
            next_start += self.cfg.interval_s
            last = cycles is not None and done >= cycles
            upload = None
            if not self.stop_requested:
                upload = self.drain_until(self.clock() if last else next_start)
            if self.on_cycle is not None:
                self.on_cycle(CycleOutcome(report, upload))
            next_start = max(next_start, self.clock())
        return done

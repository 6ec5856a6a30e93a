"""One measurement cycle in this process (probe → spool), for ``agent once`` and the worker.

The long-running agent (``agent run``) is :mod:`agent.service`: a small supervisor that
runs each measurement in a worker process (:mod:`agent.worker`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from agent import __version__
from agent.config import AgentConfig
from agent.probes import PROBES, ProbeSpec
from agent.runner import run_probes
from agent.spool import Spool
from agent.wire import Report

if TYPE_CHECKING:
    import httpx


def collector_client(cfg: AgentConfig) -> httpx.Client:
    import httpx

    from agent.probes.net import ssl_context

    return httpx.Client(base_url=cfg.collector_url, timeout=cfg.timeout_s,
                        verify=ssl_context(cfg.ca_bundle),
                        headers={"User-Agent": f"classprobe-agent/{__version__}"})


def probe_and_spool(cfg: AgentConfig, spool: Spool, probes: tuple[ProbeSpec, ...] = PROBES,
                    skip: frozenset[str] = frozenset(),
                    stopped: Callable[[], bool] = lambda: False) -> Report | None:
    """Run the probes (stopping early if asked) and commit their report to the spool."""
    results = run_probes(cfg, probes, skip, stopped)
    if not results:
        return None
    return spool.add(cfg.agent_id, __version__, results)

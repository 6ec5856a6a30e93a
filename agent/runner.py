"""Runs probes; a probe that raises becomes a failed result and the others still run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from agent.config import AgentConfig
from agent.probes import PROBES, ProbeSpec
from agent.probes.results import ResultBuilder
from agent.wire import ProbeResult

log = logging.getLogger(__name__)


def run_probe(spec: ProbeSpec, cfg: AgentConfig) -> list[ProbeResult]:
    started = ResultBuilder(spec.name)
    try:
        results = spec.run(cfg)
    except Exception as exc:  # one broken probe must not cost the cycle its other results
        log.exception("probe %s crashed", spec.name)
        return [started.failed(f"probe crashed: {type(exc).__name__}: {exc}")]
    return results


def run_probes(cfg: AgentConfig, probes: Iterable[ProbeSpec] = PROBES,
               skip: Iterable[str] = (),
               stopped: Callable[[], bool] = lambda: False) -> list[ProbeResult]:
    """Every probe in order, except those named in ``skip``; none after ``stopped()``."""
    skipped = set(skip)
    results: list[ProbeResult] = []
    for spec in probes:
        if stopped():
            log.info("stop requested: the remaining probes of this cycle do not run")
            break
        if spec.name not in skipped:
            results.extend(run_probe(spec, cfg))
    return results

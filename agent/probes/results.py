"""Builders for :class:`agent.wire.ProbeResult` and its measurements.

Every probe goes through these so that units always come from the metric catalogue and a
failed or skipped result never carries a number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from agent.metrics import CATALOGUE
from agent.stats import summarise
from agent.wire import Measurement, ProbeResult, utcnow


def unit_of(metric: str) -> str:
    spec = CATALOGUE.get(metric)
    if spec is None:
        raise KeyError(f"metric {metric!r} is not in the catalogue (agent/metrics.py)")
    return spec.unit


def value(metric: str, method: str, number: float, samples: int = 1) -> Measurement:
    return Measurement(metric=metric, unit=unit_of(metric), method=method,
                       value=float(number), samples=samples)


def text(metric: str, method: str, content: str) -> Measurement:
    return Measurement(metric=metric, unit=unit_of(metric), method=method, text=content)


def flag(metric: str, method: str, state: bool) -> Measurement:
    return value(metric, method, 1.0 if state else 0.0)


def summary(metric: str, method: str, samples: Sequence[float],
            digits: int = 3) -> list[Measurement]:
    """min / p50 / p95 / max of the samples (nearest rank, see :mod:`agent.stats`)."""
    s = summarise(samples)
    unit = unit_of(metric)
    return [Measurement(metric=metric, unit=unit, method=method, value=round(v, digits),
                        stat=stat, samples=s.n)  # type: ignore[arg-type]
            for stat, v in (("min", s.min), ("p50", s.p50), ("p95", s.p95), ("max", s.max))]


@dataclass
class ResultBuilder:
    """Collects measurements and notes for one probe/target, then makes the result.

    ``notes`` become the reason of an ok result (what was not measured and why).
    """

    probe: str
    target: str | None = None
    started_at: datetime = field(default_factory=utcnow)
    measurements: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *items: Measurement) -> None:
        self.measurements.extend(items)

    def extend(self, items: Sequence[Measurement]) -> None:
        self.measurements.extend(items)

    def note(self, message: str) -> None:
        self.notes.append(message)

    def ok(self) -> ProbeResult:
        return ProbeResult(probe=self.probe, target=self.target, status="ok",
                           started_at=self.started_at, finished_at=utcnow(),
                           reason="; ".join(self.notes) or None,
                           measurements=list(self.measurements))

    def failed(self, reason: str) -> ProbeResult:
        return self._without_numbers("failed", reason)

    def skipped(self, reason: str) -> ProbeResult:
        return self._without_numbers("skipped", reason)

    def _without_numbers(self, status: str, reason: str) -> ProbeResult:
        return ProbeResult(probe=self.probe, target=self.target,
                           status=status,  # type: ignore[arg-type]
                           started_at=self.started_at, finished_at=utcnow(), reason=reason)


def print_results(results: Sequence[ProbeResult], as_json: bool) -> int:
    """Print results as text or ``{"results": [...]}`` JSON; 1 if any failed, else 0."""
    from agent.render import results_text
    from agent.wire import to_jsonable

    if as_json:
        print(json.dumps({"results": [to_jsonable(r) for r in results]}, indent=2))
    else:
        print(results_text(list(results)))
    return 1 if any(r.status == "failed" for r in results) else 0

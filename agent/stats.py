"""Summary statistics the probes share: percentiles and jitter. Pure functions, stdlib only.

Percentiles use the **nearest-rank** method: the p-th percentile of ``n`` sorted samples
is the sample at 1-based rank ``ceil(p / 100 * n)`` (rank 1 for p = 0). Every reported
percentile is therefore a value that was really measured, never an interpolation between
two samples. With 5 samples p50 is the 3rd smallest and p95 is the largest; with 4 samples
p50 is the 2nd smallest (the lower median).

Jitter is the **mean absolute difference of consecutive samples**, in the order they were
taken: ``sum(|x[i] - x[i-1]|) / (n - 1)``. This is the per-packet quantity ``|D(i-1, i)|``
of RFC 3550 §6.4.1 averaged plainly, without RFC 3550's 1/16 exponential smoothing (which
only converges over hundreds of packets; a probe takes a handful). It needs two samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile ``p`` (0–100) of ``values``; raises on an empty input."""
    if not values:
        raise ValueError("percentile of no samples")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p!r} is outside 0..100")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def jitter(values: Sequence[float]) -> float:
    """Mean absolute difference of consecutive samples (see the module docstring)."""
    if len(values) < 2:
        raise ValueError(f"jitter needs at least 2 samples, got {len(values)}")
    diffs = [abs(b - a) for a, b in zip(values, values[1:], strict=False)]
    return sum(diffs) / len(diffs)


@dataclass(frozen=True)
class Summary:
    """min / p50 / p95 / max of ``n`` samples."""

    n: int
    min: float
    p50: float
    p95: float
    max: float


def summarise(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("summary of no samples")
    return Summary(n=len(values), min=min(values), p50=percentile(values, 50),
                   p95=percentile(values, 95), max=max(values))

"""Fast bootstrap draws of one statistic over groups of values. Pure: no I/O.

A resample draws k groups with replacement from the k groups (a device's samples, or
single samples as groups of one: a cluster bootstrap) and takes the statistic of all the
values drawn. Built naively that is a list of N values made and sorted per resample:
seconds per requirement at 10,000 samples a side. Here, with the same result:

- ``mean``: from each group's sum and count, O(k) per resample;
- ``pNN``, ``min``, ``max`` of groups: the values are sorted once; a resample's order
  statistics are found by bisecting the running total of the drawn groups' weights along
  the sorted values (loops in C, O(N));
- ``pNN``, ``min``, ``max`` of single samples: with the n values sorted, a resample's
  j-th smallest value is ``sorted[floor(n * U_j)]`` where U_j, the j-th smallest of n
  uniform numbers, is Beta(j, n + 1 - j), and the next one is
  ``U_j + (1 - U_j) * (1 - V ** (1 / (n - j)))`` for a uniform V: exact, O(1).

Percentiles interpolate linearly between closest ranks, as
:func:`collector.services.readiness_samples.percentile` does.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from collector.services.readiness_samples import statistic

BISECT_COST = 10
"""A bisection step per drawn group costs about this many steps of the O(N) scan."""


def _percent(name: str) -> float | None:
    """The percentile a statistic name stands for (min 0, max 100); None for ``mean``."""
    if name == "mean":
        return None
    if name in ("min", "max"):
        return 0.0 if name == "min" else 100.0
    if name.startswith("p") and name[1:].isdigit():
        return float(name[1:])
    raise ValueError(f"unknown statistic {name!r}")


class Resampler:
    """Draws of ``name`` (``mean``, ``min``, ``max``, ``pNN``) over resampled ``groups``."""

    def __init__(self, groups: Sequence[Sequence[float]], name: str) -> None:
        if not groups or not all(groups):
            raise ValueError("a resampler needs groups, none of them empty")
        self.k = len(groups)
        self.q = _percent(name)
        self.observed = statistic(name, [v for g in groups for v in g])
        self.single = all(len(g) == 1 for g in groups)
        pairs = sorted((v, i) for i, g in enumerate(groups) for v in g)
        self.values = [v for v, _ in pairs]
        self.group_of = [i for _, i in pairs]
        self.sums = [math.fsum(g) for g in groups]
        self.counts = [len(g) for g in groups]
        self.by_group = [sorted(g) for g in groups]

    def draw(self, rng: random.Random) -> float:
        """The statistic of one resample."""
        if self.q is None:
            return self._mean(rng)
        if self.single:
            return self._single_percentile(rng, self.q)
        return self._group_percentile(rng, self.q)

    def _mean(self, rng: random.Random) -> float:
        if self.single:
            return math.fsum(rng.choices(self.values, k=self.k)) / self.k
        drawn = rng.choices(range(self.k), k=self.k)
        return math.fsum(self.sums[d] for d in drawn) / sum(self.counts[d] for d in drawn)

    @staticmethod
    def _interpolate(low: float, high: float, pos: float) -> float:
        return low + (high - low) * (pos - math.floor(pos))

    def _single_percentile(self, rng: random.Random, q: float) -> float:
        n = len(self.values)
        pos = (n - 1) * q / 100
        j = math.floor(pos) + 1  # the 1-based rank below pos
        u = rng.betavariate(j, n + 1 - j)
        low = self.values[min(int(u * n), n - 1)]
        if j >= n or pos == j - 1:
            return low
        u += (1 - u) * (1 - rng.random() ** (1 / (n - j)))
        return self._interpolate(low, self.values[min(int(u * n), n - 1)], pos)

    def _group_percentile(self, rng: random.Random, q: float) -> float:
        weights: dict[int, int] = {}
        for d in rng.choices(range(self.k), k=self.k):
            weights[d] = weights.get(d, 0) + 1
        total = sum(self.counts[d] * w for d, w in weights.items())
        pos = (total - 1) * q / 100
        rank = math.floor(pos)
        if len(weights) * BISECT_COST * math.log2(len(self.values) + 1) < len(self.values):
            low = self._order_by_bisect(weights, rank)
            high = low if pos == rank else self._order_by_bisect(weights, rank + 1)
        else:
            dense = [0] * self.k
            for d, w in weights.items():
                dense[d] = w
            running = list(accumulate(map(dense.__getitem__, self.group_of)))
            low = self.values[bisect_right(running, rank)]
            high = low if pos == rank else self.values[bisect_right(running, rank + 1)]
        return self._interpolate(low, high, pos)

    def _order_by_bisect(self, weights: dict[int, int], rank: int) -> float:
        """The resample's value of 0-based ``rank``: the smallest value with more than
        ``rank`` drawn values at or below it, by bisection over the sorted values."""
        lo, hi = 0, len(self.values) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            x = self.values[mid]
            if sum(w * bisect_right(self.by_group[d], x) for d, w in weights.items()) > rank:
                hi = mid
            else:
                lo = mid + 1
        return self.values[lo]

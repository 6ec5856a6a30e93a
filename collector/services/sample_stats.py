"""Readiness statistics of many groups of samples at once, bit for bit the Python ones.

:func:`collector.services.readiness_samples.statistic` and ``share_pct`` summarise one
list of floats. The fast evaluation (:mod:`collector.services.sample_cells`) needs them
for every device, room and period of a window, over millions of samples, so here the
values are numpy arrays grouped by an integer label:

- :meth:`SortedGroups.build` puts each group's values together, ascending. It takes the
  samples already in value order (one float argsort per partition, shared by every
  window and grouping) and sorts them stably by label (a radix sort for labels that fit
  16 bits), so every grouping costs a linear pass, not a sort;
- a percentile needs only the two order statistics around rank ``(n - 1) × q / 100``:
  they are read from the sorted groups and combined by the very same Python float
  formula (:func:`readiness_samples.percentile_ranks` and ``interpolate``). Not
  ``np.percentile``: its interpolation differs from ours in the last bit;
- ``min`` / ``max`` are a group's first / last value; ``mean`` is ``math.fsum`` over the
  group (correctly rounded, so the order does not matter); ``share`` counts the values
  meeting the comparison (numpy compares IEEE doubles as Python does) and takes
  ``100.0 × meeting / total`` in Python.

So every statistic equals the Python one bit for bit on finite values
(``tests/collector/test_sample_stats.py``), with one exception shared with the Python
path itself: ``0.0`` and ``-0.0`` compare equal, so when a group holds both, which sign
a percentile, min or max returns depends on the order the values came in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from collector.services.readiness_samples import interpolate, percentile_of, percentile_ranks

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

NP_OPS: dict[str, Callable[[Floats, float], npt.NDArray[np.bool_]]] = {
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
    "==": np.equal,
}
""":data:`readiness_samples.OPS` as numpy's comparisons; a test holds the two to the same
symbols (those profiles allow) and the same answer for every value."""
_RADIX_MAX = np.iinfo(np.int16).max


@dataclass(frozen=True)
class SortedGroups:
    """Values grouped by label: group ``i`` (label ``labels[i]``) is
    ``values[starts[i]:starts[i] + counts[i]]``, ascending. Only labels with values."""

    labels: Ints
    counts: Ints
    starts: Ints
    values: Floats

    @classmethod
    def build(cls, values: Floats, order: Ints, labels: npt.NDArray[np.integer] | None = None,
              ) -> SortedGroups:
        """Group ``values[order]``: ``order`` lists the samples to group, in ascending
        value order (e.g. ``np.argsort(values)``, filtered); ``labels`` gives each sample's
        group (a negative label leaves it out); None: all in one group, label 0."""
        if labels is None:
            n = len(order)
            return cls(np.zeros(1 if n else 0, np.int64), np.full(1 if n else 0, n, np.int64),
                       np.zeros(1 if n else 0, np.int64), values[order])
        lab = labels[order]
        if len(lab) and lab.min() < 0:
            keep = lab >= 0
            order, lab = order[keep], lab[keep]
        if len(lab) and lab.max() <= _RADIX_MAX:
            lab = lab.astype(np.int16)
        by_label = np.argsort(lab, kind="stable")
        counts = np.bincount(lab) if len(lab) else np.zeros(0, np.int64)
        present = np.flatnonzero(counts)
        counts = counts[present].astype(np.int64)
        starts = np.zeros(len(counts), np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        return cls(present.astype(np.int64), counts, starts, values[order[by_label]])

    def __len__(self) -> int:
        return len(self.labels)

    def statistic(self, name: str) -> list[float]:
        """``min``, ``max``, ``mean`` or ``pNN`` of each group, as Python floats."""
        if name == "min":
            return self.values[self.starts].tolist()  # type: ignore[no-any-return]
        if name == "max":
            return self.values[self.starts + self.counts - 1].tolist()  # type: ignore[no-any-return]
        if name == "mean":
            return [math.fsum(self.values[s:s + n].tolist()) / n
                    for s, n in zip(self.starts.tolist(), self.counts.tolist(), strict=True)]
        q = percentile_of(name)
        if q is None:
            raise ValueError(f"unknown statistic {name!r}")
        return self.percentile(q)

    def percentile(self, q: float) -> list[float]:
        """The q-th percentile (0..100) of each group: see the module text."""
        ranks = [percentile_ranks(n, q) for n in self.counts.tolist()]
        low = np.fromiter((r[0] for r in ranks), np.int64, len(ranks))
        high = np.fromiter((r[1] for r in ranks), np.int64, len(ranks))
        lows = self.values[self.starts + low].tolist()
        highs = self.values[self.starts + high].tolist()
        return [interpolate(a, b, r[2]) for a, b, r in zip(lows, highs, ranks, strict=True)]

    def share(self, op: str, threshold: float) -> list[float]:
        """The % of each group's values for which ``value op threshold`` holds."""
        if not len(self):
            return []
        meets = NP_OPS[op](self.values, threshold).astype(np.int64)
        meeting = np.add.reduceat(meets, self.starts).tolist()
        return [100.0 * m / n for m, n in zip(meeting, self.counts.tolist(), strict=True)]


def value_order(values: Floats) -> Ints:
    """The indices of ``values`` in ascending order (what :meth:`SortedGroups.build` takes)."""
    return np.argsort(values).astype(np.int64, copy=False)

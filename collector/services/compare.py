"""Before/after comparison of two sets of measurements against a profile. Pure: no I/O.

For each requirement the matching samples of each side come from
:func:`collector.services.readiness_samples.requirement_samples` (metric, stat, targets, the
requirement's window). What is compared:

- **the requirement's statistic** (p95, mean…) for a number compared with ``<``, ``<=``,
  ``>`` or ``>=``: the change is ``statistic(after) - statistic(before)`` in the
  requirement's unit, and "better" is the direction the requirement wants (``<`` wants
  lower, ``>`` higher);
- **the share of samples that meet the requirement** (``value op threshold``, in %) for
  the ``share`` statistic, for ``bool`` metrics (0/1 flags, whose p50 or max only moves
  when most or any samples flip) and for ``==`` (no direction to move in). The change is
  in percentage points and more is always better. On 0/1 values the rank test below is
  the two-proportion z-test (up to a factor sqrt((N-1)/N)) and the bootstrap compares
  the two proportions directly. A per-student threshold is scaled by the class size
  first, as the evaluation does.

The comparison is of the site as a whole (every room's samples pooled), whatever the
requirement's ``scope``; per-room comparisons are not made.

Uncertainty, two ways, and a change counts only when both agree:

- a **95 % bootstrap interval** of the change (percentile method, a seeded
  ``random.Random``, 2,000 resamples by default, both sides resampled independently).
  Samples from one PC are correlated: the same NIC, the same spot in the room's Wi-Fi,
  the same background load. Resampling single samples would treat 500 readings from 3
  PCs as 500 independent facts and give an interval far too narrow, so with at least
  :data:`MIN_DEVICES` devices on each side whole devices are resampled (a cluster
  bootstrap: each resample draws the devices with replacement and keeps all their
  samples). With fewer devices that has too few distinct resamples to mean anything, so
  single samples are resampled and the reason says the interval is likely too narrow.
  Each side's spread is widened by sqrt(k / (k - 1)) for k devices (or samples), the
  n - 1 of a sample variance. Even so, with few devices the interval stays a little
  narrow: in simulation (normal samples, 400 resamples) it held the true change about
  89-92 % of the time with 5-6 devices a side, 94-96 % with 10. The draws come from
  :mod:`collector.services.compare_bootstrap` (no list is rebuilt per resample): at
  10,000 samples a side a percentile takes about 1-3 s, a mean over devices 0.1 s; a
  mean or share of single samples (fewer than 5 devices) is O(n) per resample, about
  2 s per 10,000 samples;
- a two-sided **Mann-Whitney U** test (normal approximation with tie correction and
  continuity correction, as ``scipy.stats.mannwhitneyu(method="asymptotic")``): does one
  side tend to have larger values? It assumes independent samples, so it too is
  optimistic when a few PCs give most samples.

Verdict: **unknown** when either side has fewer than the requirement's ``min_samples``;
**better** / **worse** when the interval excludes 0, the rank test gives p < 0.05 and
both point the same way; otherwise **no significant change**. Requiring both is
conservative (in the same simulation, identical distributions were called better or
worse in 0.5-4.5 % of trials): a change confined to the tail (p95 moved, the bulk did
not) may show as no significant change, with the interval in the reason. Bootstrap
intervals of ``min`` and ``max`` are rough (an extreme is poorly resampled); prefer
percentiles. The widening can push a share's interval a little past 0 or 100 %.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from agent.metrics import CATALOGUE
from collector.services.compare_bootstrap import Resampler
from collector.services.profiles import Profile, Requirement
from collector.services.readiness_samples import (
    OPS,
    Sample,
    percentile,
    requirement_samples,
    statistic,
)
from collector.services.rows import MeasurementRow

Verdict = Literal["better", "worse", "no significant change", "unknown"]
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20260907
CONFIDENCE_PCT = 95.0
ALPHA = 0.05
MIN_DEVICES = 5


@dataclass(frozen=True)
class RankTest:
    """Mann-Whitney U of ``after`` against ``before``.

    ``u``: pairs (after, before) where after is larger, plus half the ties; ``z`` > 0
    when after tends to be larger; ``p_value`` two-sided.
    """

    u: float
    z: float
    p_value: float


@dataclass(frozen=True)
class Side:
    label: str
    value: float | None
    """The compared quantity: the statistic, or the share meeting the requirement (%)."""
    samples: int
    devices: int


@dataclass(frozen=True)
class RequirementChange:
    requirement: Requirement
    quantity: str
    """What is compared, e.g. ``p95`` or ``share of samples < 100 ms``."""
    unit: str
    better_when: Literal["lower", "higher"]
    before: Side
    after: Side
    verdict: Verdict
    reason: str
    change: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    rank_test: RankTest | None = None
    resampled: Literal["devices", "samples"] | None = None


@dataclass(frozen=True)
class Comparison:
    profile: Profile
    before: str
    after: str
    changes: tuple[RequirementChange, ...]
    resamples: int
    seed: int
    notes: tuple[str, ...] = ()


def mann_whitney(before: Sequence[float], after: Sequence[float]) -> RankTest:
    """Two-sided Mann-Whitney U test, normal approximation with tie and continuity
    correction. Both sides must be non-empty."""
    n_b, n_a = len(before), len(after)
    if not n_b or not n_a:
        raise ValueError(f"Mann-Whitney needs samples on both sides (got {n_b} and {n_a})")
    combined = sorted([(v, 0) for v in before] + [(v, 1) for v in after])
    n = n_b + n_a
    rank_sum_after = 0.0
    tie_term = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and combined[j + 1][0] == combined[i][0]:
            j += 1
        midrank = (i + j) / 2 + 1
        rank_sum_after += midrank * sum(side for _, side in combined[i:j + 1])
        ties = j - i + 1
        tie_term += ties ** 3 - ties
        i = j + 1
    u = rank_sum_after - n_a * (n_a + 1) / 2
    mean = n_a * n_b / 2
    variance = n_a * n_b / 12 * ((n + 1) - tie_term / (n * (n - 1))) if n > 1 else 0.0
    if variance <= 0:
        return RankTest(u, 0.0, 1.0)
    diff = u - mean
    z = math.copysign(max(abs(diff) - 0.5, 0.0), diff) / math.sqrt(variance)
    return RankTest(u, z, min(1.0, math.erfc(abs(z) / math.sqrt(2))))


def _draws(groups: list[list[float]], name: str, resamples: int,
           rng: random.Random) -> list[float]:
    resampler = Resampler(groups, name)
    observed = resampler.observed
    k = len(groups)
    scale = math.sqrt(k / (k - 1)) if k > 1 else 1.0
    return [observed + (resampler.draw(rng) - observed) * scale for _ in range(resamples)]


def bootstrap_interval(before: list[list[float]], after: list[list[float]], name: str,
                       resamples: int, rng: random.Random) -> tuple[float, float]:
    """The central 95 % of ``name(after*) - name(before*)`` (a statistic: mean, pNN…)
    over ``resamples`` resamples; each side is a list of groups (a device's samples, or
    single samples) drawn with replacement. Each side's spread around its observed value
    is widened by sqrt(k / (k - 1)) for k groups: a resample of k groups varies less than
    a new draw of k groups would (the n - 1 of a sample variance); 10 % for 6 devices."""
    if resamples < 1:
        raise ValueError(f"resamples {resamples} must be >= 1")
    before_draws = _draws(before, name, resamples, rng)
    after_draws = _draws(after, name, resamples, rng)
    diffs = [a - b for a, b in zip(after_draws, before_draws, strict=True)]
    tail = (100 - CONFIDENCE_PCT) / 2
    return percentile(diffs, tail), percentile(diffs, 100 - tail)


def _fmt(value: float) -> str:
    text = f"{value:.4g}"
    return "0" if text == "-0" else text


def _share_mode(req: Requirement) -> bool:
    spec = CATALOGUE.get(req.metric)
    return req.statistic == "share" or req.op == "==" or (spec is not None and
                                                          spec.kind == "flag")


def _threshold(req: Requirement, class_size: int) -> float:
    return req.threshold * class_size if req.per_student else req.threshold


def _groups(samples: Sequence[Sample], values: Sequence[float],
            by_device: bool) -> list[list[float]]:
    if not by_device:
        return [[v] for v in values]
    grouped: dict[str, list[float]] = defaultdict(list)
    for sample, value in zip(samples, values, strict=True):
        grouped[sample.agent_id].append(value)
    return list(grouped.values())


@dataclass(frozen=True)
class _Measure:
    """How one requirement is compared: each sample's value, and the statistic over them."""

    name: str
    unit: str
    change_unit: str
    better_when: Literal["lower", "higher"]
    value: Callable[[float], float]
    statistic: str
    """``mean`` for a share (the values are 0 or 100), else the requirement's."""


def _measure(req: Requirement, class_size: int) -> _Measure:
    if not _share_mode(req):
        return _Measure(req.statistic, req.unit, req.unit,
                        "lower" if req.op in ("<", "<=") else "higher", float, req.statistic)
    meets, threshold = OPS[req.op], _threshold(req, class_size)
    return _Measure(f"share of samples {req.op} {_fmt(threshold)} {req.unit}", "%",
                    "percentage points", "higher",
                    lambda v: 100.0 if meets(v, threshold) else 0.0, "mean")


def compare_requirement(req: Requirement, before: Sequence[Sample], after: Sequence[Sample],
                        class_size: int, *, labels: tuple[str, str] = ("before", "after"),
                        resamples: int = DEFAULT_RESAMPLES,
                        seed: int = DEFAULT_SEED) -> RequirementChange:
    """The change of one requirement's quantity from ``before`` to ``after`` samples."""
    m = _measure(req, class_size)
    b_values, a_values = [m.value(s.value) for s in before], [m.value(s.value) for s in after]
    b_devices, a_devices = len({s.agent_id for s in before}), len({s.agent_id for s in after})
    b_side = Side(labels[0], statistic(m.statistic, b_values) if b_values else None,
                  len(b_values), b_devices)
    a_side = Side(labels[1], statistic(m.statistic, a_values) if a_values else None,
                  len(a_values), a_devices)
    unknown = RequirementChange(req, m.name, m.unit, m.better_when, b_side, a_side, "unknown",
                                "")
    short = [f"{label}: {len(vs)}"
             for vs, label in zip((b_values, a_values), labels, strict=True)
             if len(vs) < req.min_samples]
    if short or b_side.value is None or a_side.value is None:
        return replace(unknown, reason=f"too few samples ({', '.join(short)}); at least "
                                       f"{req.min_samples} needed on each side")
    by_device = min(b_devices, a_devices) >= MIN_DEVICES
    low, high = bootstrap_interval(_groups(before, b_values, by_device),
                                   _groups(after, a_values, by_device), m.statistic,
                                   resamples, random.Random(seed))
    rank = mann_whitney(b_values, a_values)
    change = a_side.value - b_side.value
    verdict, why = _verdict(low, high, rank, m.better_when)
    reason = (f"{m.name} {_fmt(b_side.value)} → {_fmt(a_side.value)} {m.unit}: "
              f"{'+' if change > 0 else ''}{_fmt(change)} {m.change_unit} "
              f"({_fmt(CONFIDENCE_PCT)} % CI {_fmt(low)} to {_fmt(high)}), "
              f"Mann-Whitney p = {rank.p_value:.3g}; {m.better_when} is better; {why}")
    if not by_device:
        reason += (f"; resampled single samples (fewer than {MIN_DEVICES} devices on a side), "
                   "so the interval is likely too narrow")
    return replace(unknown, verdict=verdict, reason=reason, change=change, ci_low=low,
                   ci_high=high, rank_test=rank, resampled="devices" if by_device else "samples")


def _verdict(low: float, high: float, rank: RankTest,
             better_when: str) -> tuple[Verdict, str]:
    ci_sign = 1 if low > 0 else -1 if high < 0 else 0
    rank_sign = 0 if rank.p_value >= ALPHA else (1 if rank.z > 0 else -1)
    if ci_sign and ci_sign == rank_sign:
        went = "higher" if ci_sign > 0 else "lower"
        return ("better" if went == better_when else "worse"), f"significantly {went}"
    if not ci_sign and not rank_sign:
        return "no significant change", "the interval includes 0 and p >= 0.05"
    if ci_sign and not rank_sign:
        return "no significant change", "the interval excludes 0 but the rank test does not " \
                                        "confirm a shift (p >= 0.05)"
    if not ci_sign:
        return "no significant change", "the rank test finds a shift but the interval of " \
                                        "the statistic includes 0"
    return "no significant change", "the statistic and the rank test point in opposite " \
                                    "directions"


def compare(profile: Profile, before_rows: Iterable[MeasurementRow],
            after_rows: Iterable[MeasurementRow], *, labels: tuple[str, str] = ("before", "after"),
            class_size: int | None = None, resamples: int = DEFAULT_RESAMPLES,
            seed: int = DEFAULT_SEED, notes: Sequence[str] = ()) -> Comparison:
    """Every requirement of ``profile``: ``before_rows`` against ``after_rows``.

    Each requirement is resampled with its own ``random.Random(seed)``, so a result does
    not depend on the other requirements and the same data always gives the same answer.
    """
    before_rows, after_rows = list(before_rows), list(after_rows)
    size = profile.class_size if class_size is None else class_size
    changes = tuple(
        compare_requirement(req, requirement_samples(req, before_rows),
                            requirement_samples(req, after_rows), size, labels=labels,
                            resamples=resamples, seed=seed)
        for req in profile.requirements)
    return Comparison(profile, labels[0], labels[1], changes, resamples, seed, tuple(notes))


def _side_dict(side: Side) -> dict[str, Any]:
    return {"label": side.label, "value": side.value, "samples": side.samples,
            "devices": side.devices}


def comparison_dict(comparison: Comparison) -> dict[str, Any]:
    """A comparison as plain JSON types."""
    items = []
    for c in comparison.changes:
        req = c.requirement
        rank = c.rank_test
        items.append({
            "id": req.id, "title": req.title, "metric": req.metric, "stat": req.stat,
            "statistic": req.statistic, "op": req.op, "threshold": req.threshold,
            "severity": req.severity, "quantity": c.quantity, "unit": c.unit,
            "better_when": c.better_when, "before": _side_dict(c.before),
            "after": _side_dict(c.after), "change": c.change,
            "ci": None if c.ci_low is None else {"confidence_pct": CONFIDENCE_PCT,
                                                  "low": c.ci_low, "high": c.ci_high},
            "mann_whitney": None if rank is None else {"u": rank.u, "z": rank.z,
                                                       "p_value": rank.p_value},
            "resampled": c.resampled, "verdict": c.verdict, "reason": c.reason})
    counts = {v: sum(c.verdict == v for c in comparison.changes)
              for v in ("better", "worse", "no significant change", "unknown")}
    p = comparison.profile
    return {"profile": p.id, "version": p.version, "title": p.title,
            "before": comparison.before, "after": comparison.after,
            "resamples": comparison.resamples, "seed": comparison.seed, "summary": counts,
            "notes": list(comparison.notes), "requirements": items}

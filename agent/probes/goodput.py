"""Pure maths of the bandwidth probe: timelines, warm-up, stability, goodput.

A *timeline* is a list of ``(t, cumulative_bytes)`` samples, ``t`` in seconds since the
transfer started (first sample ``(0.0, 0)``), taken every ~100 ms.

- **Warm-up** (excluded): at least ``min_s`` (1 s; the bandwidth probe asks 1.5 s),
  then until the rate has stopped ramping: the warm-up ends at the first sample
  ``t >= min_s`` where the rate over ``(t - span, t]`` is no more than ``tolerance``
  (10 %) above the rate over ``(t - 2 span, t - span]`` (span 0.5 s). TCP slow start, a
  shaper's initial burst and connection setup all fall inside it.
- **Measuring window**: from the end of the warm-up to the last sample.
- **Goodput** = the least-squares slope of the cumulative bytes over the window's
  samples, in Mbps (10^6 bit/s). Not the end points: an application sees TCP data in
  bursts (a retransmission that fills a hole releases everything queued behind it at
  once), and a window edge that falls inside such a burst moves an end-point rate by
  1–3 % on a 5 Mbit/s link; the fit weighs every sample equally.
- **Stable** (:func:`settled`): once the window is :func:`min_window` long (2.5 s, or 50
  loaded RTTs if longer), the goodput estimate is recomputed at every sample; it is
  stable when every estimate of the last ``span_s`` (1 s) is within ``tolerance_pct``
  (2 %) of the latest one.
- **Upload goodput** (:func:`confirmed_rate`): the server confirms bytes only when a
  request completes, so each stream's delivered-bytes curve is known at its completions
  and linear in between; the streams' curves are summed over the window they all cover
  and fitted like a timeline (see the function).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

Timeline = Sequence[tuple[float, int | float]]
GRID_S = 0.05
"""Spacing of the common time grid on which stream curves are summed (upload)."""


def mbps(nbytes: float, seconds: float) -> float:
    """Megabits per second (10^6 bit/s) for ``nbytes`` over ``seconds``."""
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {seconds!r}")
    return nbytes * 8 / seconds / 1e6


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope dy/dx of at least two points with distinct x."""
    n = len(points)
    if n < 2:
        raise ValueError(f"a slope needs at least 2 points, got {n}")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx <= 0:
        raise ValueError("a slope needs points at different times")
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def _bytes_at(timeline: Timeline, t: float) -> float:
    """Cumulative bytes at time ``t``, linear between samples (clamped at the ends)."""
    if t <= timeline[0][0]:
        return float(timeline[0][1])
    for (t0, b0), (t1, b1) in zip(timeline, timeline[1:], strict=False):
        if t0 <= t <= t1:
            return b0 + (b1 - b0) * ((t - t0) / (t1 - t0) if t1 > t0 else 1.0)
    return float(timeline[-1][1])


def warmup_end(timeline: Timeline, min_s: float = 1.0, span_s: float = 0.5,
               tolerance: float = 0.10) -> float | None:
    """Time at which the warm-up ends (see module docstring); None while still ramping."""
    for t, _ in timeline:
        if t < min_s or t < 2 * span_s:
            continue
        recent = _bytes_at(timeline, t) - _bytes_at(timeline, t - span_s)
        before = _bytes_at(timeline, t - span_s) - _bytes_at(timeline, t - 2 * span_s)
        if recent <= before * (1 + tolerance):
            return t
    return None


@dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float
    bytes: int
    mbps: float
    """Least-squares slope over the window's samples (see the module docstring)."""

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def average_mbps(self) -> float:
        """End-point rate: ``bytes`` over ``duration_s``."""
        return mbps(self.bytes, self.duration_s)


def window(timeline: Timeline, start_s: float) -> Window | None:
    """The window from the first sample at or after ``start_s`` to the last sample."""
    inside = [(t, float(b)) for t, b in timeline if t >= start_s]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    (t0, b0), (t1, b1) = inside[0], inside[-1]
    return Window(start_s=t0, end_s=t1, bytes=round(b1 - b0),
                  mbps=slope(inside) * 8 / 1e6)


def running_mbps(timeline: Timeline, start_s: float) -> float | None:
    """Goodput from the window start to the latest sample; None before there is one."""
    w = window(timeline, start_s)
    return None if w is None else w.mbps


def settled(history: Sequence[tuple[float, float]], span_s: float = 1.0,
            tolerance_pct: float = 2.0) -> bool:
    """Whether every estimate of the last ``span_s`` is within ``tolerance_pct`` of the
    latest. ``history`` is ``(t, estimate)`` in time order and must reach back at least
    ``span_s`` before its last entry."""
    if not history or history[-1][0] - history[0][0] < span_s:
        return False
    t_last, latest = history[-1]
    if latest <= 0:
        return False
    recent = [e for t, e in history if t >= t_last - span_s]
    return all(abs(e - latest) <= latest * tolerance_pct / 100 for e in recent)


def min_window(base_s: float, loaded_rtts_ms: Sequence[float], rtts: float = 50.0) -> float:
    """How long the window must be before the transfer may stop as stable.

    Delivered bytes arrive in bursts of up to one window of data in flight — a hole filled
    by a retransmission, a stretch of ACKs — which is the rate times the loaded RTT. At a
    window edge such a burst moves the estimate by about RTT / window, so the window is at
    least ``rtts`` loaded RTTs (50: ~2 %, before the fit smooths it) and ``base_s``.
    """
    if not loaded_rtts_ms:
        return base_s
    ordered = sorted(loaded_rtts_ms)
    return max(base_s, rtts * ordered[len(ordered) // 2] / 1000.0)


@dataclass(frozen=True)
class Completion:
    """One request finished: when (seconds since start), the bytes it carried, and when
    it began (None: taken as the stream's previous completion)."""

    t: float
    bytes: int
    began: float | None = None


class _Curve:
    """A stream's delivered bytes: exact at each completion, linear while a request runs,
    flat between a completion and the next request's start."""

    def __init__(self, completions: Sequence[Completion]) -> None:
        points: list[tuple[float, int]] = []
        total = 0
        for index, c in enumerate(sorted(completions, key=lambda c: c.t)):
            began = c.began if c.began is not None else (points[-1][0] if index else None)
            if began is not None:
                points.append((max(began, points[-1][0]) if points else began, total))
            total += c.bytes
            points.append((max(c.t, points[-1][0]) if points else c.t, total))
        self.times = [t for t, _ in points]
        self.totals = [b for _, b in points]

    @property
    def first(self) -> float:
        return self.times[0]

    @property
    def last(self) -> float:
        return self.times[-1]

    def at(self, t: float) -> float:
        i = bisect.bisect_right(self.times, t)
        if i == 0:
            raise ValueError(f"t={t} is before this stream's first point {self.first}")
        if i == len(self.times) or self.times[i - 1] == t:
            return float(self.totals[i - 1])
        (t0, b0), (t1, b1) = (self.times[i - 1], self.totals[i - 1]), \
            (self.times[i], self.totals[i])
        return b0 + (b1 - b0) * (t - t0) / (t1 - t0)


def delivered_timeline(streams: Sequence[Sequence[Completion]], start_s: float,
                       step_s: float = GRID_S) -> Timeline | str:
    """All streams' delivered bytes summed on a common grid from ``start_s``, or why not.

    A stream sends its requests one after another and the server confirms each one's
    bytes when it completes, so a stream's delivered-bytes curve is exact at each
    completion and, while a request runs, taken as linear from its start (the error is
    at most part of one request, and of either sign). The curves are summed on a grid
    from ``start_s`` (or the latest stream start) to the earliest last completion: the
    span where every stream's curve is known. Summing each stream's own rate over its own
    span instead is biased: a stream starved early completes its first request late, so
    its span starts just as it gets its fair share back, and the sum over-read by up to
    9 % at 5 Mbit/s with 4 streams. Returns ``[(t, bytes since the window start), ...]``.
    """
    if not streams:
        return "no stream ran"
    curves = []
    for index, completions in enumerate(streams):
        curve = _Curve(completions)
        if len(curve.times) < 2 or curve.last <= curve.first:
            return (f"stream {index + 1} completed {len(completions)} request(s): not "
                    "enough to know when its bytes arrived")
        curves.append(curve)
    t0 = max(start_s, *(c.first for c in curves))
    t1 = min(c.last for c in curves)
    if t1 <= t0:
        return (f"the streams' confirmed bytes cover no common time after the {start_s:.1f} s "
                f"warm-up (earliest last completion at {t1:.2f} s)")
    steps = max(1, round((t1 - t0) / step_s))
    grid = [t0 + (t1 - t0) * i / steps for i in range(steps)] + [t1]
    base = sum(c.at(t0) for c in curves)
    return [(t, sum(c.at(t) for c in curves) - base) for t in grid]


def confirmed_rate(streams: Sequence[Sequence[Completion]], start_s: float
                   ) -> tuple[float, int, float] | str:
    """Upload goodput from per-stream request completions after ``start_s``.

    Returns ``(Mbps, bytes, window s)``: the least-squares slope of
    :func:`delivered_timeline`, the bytes it says were delivered over the common window,
    and that window's length; or, when there is no common window, the reason.
    """
    timeline = delivered_timeline(streams, start_s)
    if isinstance(timeline, str):
        return timeline
    span = timeline[-1][0] - timeline[0][0]
    return slope(timeline) * 8 / 1e6, round(timeline[-1][1]), span


def next_chunk(size: int, seconds: float, target_s: float = 0.5, lo: int = 64 * 1024,
               hi: int = 64 * 1024 * 1024) -> int:
    """Request size for the next request so that one takes about ``target_s``."""
    if seconds <= 0:
        return min(hi, size * 4)
    scaled = int(size * target_s / seconds)
    return max(lo, min(hi, scaled, size * 4))

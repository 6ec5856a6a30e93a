"""Pure maths of the bandwidth probe: timelines, warm-up, stability, goodput.

A *timeline* is a list of ``(t, cumulative_bytes)`` samples, ``t`` in seconds since the
transfer started (first sample ``(0.0, 0)``), taken every ~100 ms.

- **Warm-up** (excluded): at least ``min_s`` (1 s), then until the rate has stopped
  ramping: the warm-up ends at the first sample ``t >= min_s`` where the rate over
  ``(t - span, t]`` is no more than ``tolerance`` (10 %) above the rate over
  ``(t - 2 span, t - span]`` (span 0.5 s). TCP slow start, a shaper's initial burst and
  connection setup all fall inside it.
- **Measuring window**: from the end of the warm-up to the last sample.
- **Goodput** = bytes in the window / window duration, in Mbps (10^6 bit/s).
- **Stable** (:func:`settled`): once the window is ``min_window_s`` (2 s) long, the
  goodput estimate is recomputed at every sample; it is stable when every estimate of the
  last ``span_s`` (1 s) is within ``tolerance_pct`` (2 %) of the latest one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Timeline = Sequence[tuple[float, int]]


def mbps(nbytes: float, seconds: float) -> float:
    """Megabits per second (10^6 bit/s) for ``nbytes`` over ``seconds``."""
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {seconds!r}")
    return nbytes * 8 / seconds / 1e6


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

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def mbps(self) -> float:
        return mbps(self.bytes, self.duration_s)


def window(timeline: Timeline, start_s: float) -> Window | None:
    """The window from the first sample at or after ``start_s`` to the last sample."""
    first = next((i for i, (t, _) in enumerate(timeline) if t >= start_s), None)
    if first is None or first == len(timeline) - 1:
        return None
    (t0, b0), (t1, b1) = timeline[first], timeline[-1]
    return Window(start_s=t0, end_s=t1, bytes=b1 - b0)


def running_mbps(timeline: Timeline, start_s: float) -> float | None:
    """Goodput from the window start to the latest sample; None before there is one."""
    w = window(timeline, start_s)
    return None if w is None or w.duration_s <= 0 else w.mbps


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


@dataclass(frozen=True)
class Completion:
    """One request finished: when (seconds since start), and the bytes it carried."""

    t: float
    bytes: int


def confirmed_rate(streams: Sequence[Sequence[Completion]], start_s: float
                   ) -> tuple[float, int, float] | str:
    """Goodput from per-stream request completions after ``start_s``.

    A stream sends its requests one after another, so between two of its completions
    ``c_a < c_b`` exactly the bytes of the requests completed in ``(c_a, c_b]`` were
    delivered. Each stream's rate is those bytes over ``c_b - c_a``, from its first
    completion at or after ``start_s`` to its last; the goodput is the sum of the stream
    rates. Returns ``(Mbps, bytes, longest stream span s)`` or, when some stream has
    fewer than two completions in the window, the reason as a string.
    """
    total_mbps, total_bytes, longest = 0.0, 0, 0.0
    for index, completions in enumerate(streams):
        inside = [c for c in completions if c.t >= start_s]
        if len(inside) < 2:
            return (f"stream {index + 1} completed {len(inside)} request(s) after the "
                    "warm-up; at least 2 are needed")
        span = inside[-1].t - inside[0].t
        if span <= 0:
            return f"stream {index + 1} completions span no time"
        carried = sum(c.bytes for c in inside[1:])
        total_mbps += mbps(carried, span)
        total_bytes += carried
        longest = max(longest, span)
    if not streams:
        return "no stream ran"
    return total_mbps, total_bytes, longest


def next_chunk(size: int, seconds: float, target_s: float = 0.5, lo: int = 64 * 1024,
               hi: int = 64 * 1024 * 1024) -> int:
    """Request size for the next request so that one takes about ``target_s``."""
    if seconds <= 0:
        return min(hi, size * 4)
    scaled = int(size * target_s / seconds)
    return max(lo, min(hi, scaled, size * 4))

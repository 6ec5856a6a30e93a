"""Host stalls: moments when the whole machine stopped running the lab.

The lab's ground truth (a shaped rate, an added delay) holds only while the machine runs
the lab's processes. A virtual machine whose host deschedules it for a while (CPU steal)
stops every process at once: the wire's delay and the probe's clock both jump, timers
expire on resume, a 3 s handshake "times out". That is not an error of the probe, so a
lab test that fails while such a stall happened is rerun (``tests.lab.rerun_plugin``).

:class:`StallWatch` finds stalls from the inside: a thread asks to sleep ``tick_s`` and
notes every wake-up later than ``threshold_s``. Ordinary load does not come near it: on
this 2-core VM, over a whole run of the lab (5 minutes, 29,232 ticks) the watch woke at
most 37 ms late (p99 2.6 ms; the scheduler and the interpreter's 5 ms GIL switch), and
inside pytest at most 40 ms in any of 71 lab tests, while the failures it is for showed
3–35 s of silence. The host's steal counter (``/proc/stat``) is read alongside as
evidence; it is not part of the decision, as not every hypervisor reports it (and a
process stopped with SIGSTOP, as the plugin's tests do, shows none).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

STALL_THRESHOLD_S = 0.25
"""A wake-up this late is a stall: ~6x the worst lateness ordinary lab load gave the watch."""
TICK_S = 0.01
USER_HZ = 100
"""``/proc/stat`` counts in 1/USER_HZ s (100 on Linux for every architecture we run)."""


def steal_seconds(stat_text: str) -> float | None:
    """CPU steal of all CPUs so far, from ``/proc/stat``'s text; None when not reported."""
    for line in stat_text.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            return int(fields[8]) / USER_HZ if len(fields) > 8 else None
    return None


def read_steal_seconds() -> float | None:
    try:
        with open("/proc/stat", encoding="ascii") as f:
            return steal_seconds(f.read())
    except OSError:
        return None


@dataclass
class Stalls:
    """What a watch saw: each stall as (seconds since the watch started, seconds late)."""

    threshold_s: float = STALL_THRESHOLD_S
    seen: list[tuple[float, float]] = field(default_factory=list)
    watched_s: float = 0.0
    steal_s: float | None = None
    latest_s: float = 0.0
    """The latest wake-up, stall or not: how close ordinary load came to the threshold."""

    def describe(self) -> str:
        steal = "not reported" if self.steal_s is None else f"{self.steal_s:.2f} s"
        if not self.seen:
            return (f"no stall >= {self.threshold_s:g} s in {self.watched_s:.1f} s (latest "
                    f"wake-up {self.latest_s * 1000:.0f} ms late; host steal {steal})")
        listed = ", ".join(f"{late:.2f} s at +{at:.1f} s" for at, late in self.seen[:5])
        more = f" and {len(self.seen) - 5} more" if len(self.seen) > 5 else ""
        return (f"{len(self.seen)} stall(s) in {self.watched_s:.1f} s: {listed}{more} "
                f"(host steal {steal})")


class StallWatch:
    """``with StallWatch() as watch: ...``, then ``watch.stalls``."""

    def __init__(self, threshold_s: float = STALL_THRESHOLD_S, tick_s: float = TICK_S,
                 clock: Callable[[], float] = time.monotonic,
                 steal: Callable[[], float | None] = read_steal_seconds) -> None:
        if not 0 < tick_s < threshold_s:
            raise ValueError(f"need 0 < tick_s < threshold_s, got {tick_s}, {threshold_s}")
        self.tick_s = tick_s
        self._clock = clock
        self._steal = steal
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stall-watch", daemon=True)
        self.stalls = Stalls(threshold_s)
        self._started = 0.0
        self._steal_start: float | None = None

    def _run(self) -> None:
        before = self._clock()
        while not self._stop.wait(self.tick_s):
            now = self._clock()
            late = now - before - self.tick_s
            self.stalls.latest_s = max(self.stalls.latest_s, late)
            if late >= self.stalls.threshold_s:
                self.stalls.seen.append((before - self._started, late))
            before = now

    def __enter__(self) -> StallWatch:
        self._started = self._clock()
        self._steal_start = self._steal()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self.stalls.watched_s = self._clock() - self._started
        end = self._steal()
        if end is not None and self._steal_start is not None:
            self.stalls.steal_s = end - self._steal_start

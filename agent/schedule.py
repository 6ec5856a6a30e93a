"""When each measurement task runs: lesson-aware cadence with jitter (pure).

Tasks and the probes they run are in :data:`TASK_PROBES`. In lessons (or with no
timetable: the agent cannot tell, so it measures evenly) each task runs every
``Cadence.interval``; on a school day between periods every interval is multiplied by
``idle_factor``; on a day without school by ``idle_factor * 3``. The device inventory is
the exception: daily whatever the slot, and first within 10 minutes of start.

Keeping a room's PCs apart: a planner's first run of each task falls at a random offset
within its first interval, and every later gap gets ± ``jitter`` (relative) of random
jitter, so 30 PCs switched on together spread out and drift further apart. When the
interval changes (a lesson starts, the config changes, the watchdog stretches the
cadence), the time still to wait is rescaled by new/old interval: each PC keeps its
place in the cycle, so the lesson bell does not line the room up.

Time is an injected monotonic clock (seconds) and randomness an injected
:class:`random.Random`, so tests replay whole days instantly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

from agent.timetable import Slot

if TYPE_CHECKING:
    from agent.config import AgentConfig

TASKS = ("passive", "latency", "path", "bandwidth", "inventory", "route")
TASK_PROBES: dict[str, tuple[str, ...]] = {
    "passive": ("load", "wifi"),
    "latency": ("latency",),
    "path": ("path",),
    "bandwidth": ("bandwidth",),
    "inventory": ("device",),
    "route": ("traceroute",),
}
HEAVY = frozenset({"bandwidth"})
"""Tasks that load the network: paused by the guardrails (battery, busy, exams, budget)."""
NO_SCHOOL_FACTOR = 3.0
"""On a day without school, intervals are ``idle_factor * NO_SCHOOL_FACTOR`` long."""
LESSON_BLIND = frozenset({"inventory", "route"})
"""What the device is, and the route out, hardly change with lessons: daily, whatever the
slot."""
FIRST_RUN_WITHIN_S = {"inventory": 600.0, "route": 3600.0}
"""A new agent reports what the device is within minutes, not somewhere in its first day."""


@dataclass(frozen=True)
class Cadence:
    """In-lesson interval of each task (seconds), the idle factor and the jitter."""

    passive_s: float = 60.0
    latency_s: float = 300.0
    path_s: float = 1800.0
    bandwidth_s: float = 3600.0
    inventory_s: float = 86400.0
    route_s: float = 86400.0
    idle_factor: float = 5.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "jitter":
                if not 0 <= v < 1:
                    raise ValueError(f"cadence jitter {v!r}: expected 0 <= jitter < 1")
            elif not v > 0 or v == float("inf"):
                raise ValueError(f"cadence {f.name} {v!r}: expected a positive number")

    def base(self, task: str) -> float:
        """The in-lesson interval of ``task``."""
        if task not in TASK_PROBES:
            raise KeyError(f"unknown task {task!r} (tasks: {', '.join(TASKS)})")
        return float(getattr(self, f"{task}_s"))

    def factor(self, slot: Slot | None) -> float:
        if slot is None or slot.in_lesson:
            return 1.0
        if slot.school_day:
            return self.idle_factor
        return self.idle_factor * NO_SCHOOL_FACTOR

    def interval(self, task: str, slot: Slot | None) -> float:
        """The un-jittered interval of ``task`` in ``slot`` (None: no timetable)."""
        if task in LESSON_BLIND:
            return self.base(task)
        return self.base(task) * self.factor(slot)

    def scaled(self, k: float) -> Cadence:
        """Every interval ``k`` times longer (the watchdog's back-off)."""
        return replace(self, **{f"{t}_s": self.base(t) * k for t in TASKS})


def cadence_of(cfg: AgentConfig) -> Cadence:
    return Cadence(passive_s=cfg.passive_interval_s, latency_s=cfg.interval_s,
                   path_s=cfg.path_interval_s, bandwidth_s=cfg.bandwidth_interval_s,
                   inventory_s=cfg.inventory_interval_s, route_s=cfg.traceroute_interval_s,
                   idle_factor=cfg.idle_factor,
                   jitter=cfg.jitter)


class Planner:
    """Which tasks are due. Assign ``planner.cadence`` to follow a config change.

    ``due(now, slot)`` returns the tasks due at monotonic time ``now`` (in :data:`TASKS`
    order) and plans their next run; ``next_due(now, slot)`` is the wait until the next.
    The caller also wakes at lesson boundaries (:func:`agent.timetable.next_change`), so
    the wait is rescaled when the bell rings, not at the end of a long break interval.
    """

    def __init__(self, cadence: Cadence, rng: random.Random) -> None:
        self.cadence = cadence
        self._rng = rng
        self._next: dict[str, float] = {}
        self._basis: dict[str, float] = {}
        """The un-jittered interval each task's next run was planned with."""

    def _sync(self, now: float, slot: Slot | None) -> None:
        for task in TASKS:
            interval = self.cadence.interval(task, slot)
            if task not in self._next:
                first = min(interval, FIRST_RUN_WITHIN_S.get(task, interval))
                self._next[task] = now + self._rng.uniform(0.0, first)
            elif interval != self._basis[task]:
                left = self._next[task] - now
                if left > 0:
                    self._next[task] = now + left * interval / self._basis[task]
            self._basis[task] = interval

    def due(self, now_mono: float, slot: Slot | None,
            only: tuple[str, ...] | None = None) -> list[str]:
        """The tasks due now (of ``only``, when given); their next runs are planned."""
        self._sync(now_mono, slot)
        ready = [task for task in TASKS if self._next[task] <= now_mono
                 and (only is None or task in only)]
        j = self.cadence.jitter
        for task in ready:
            self._next[task] = now_mono + self._basis[task] * (1 + self._rng.uniform(-j, j))
        return ready

    def next_due(self, now_mono: float, slot: Slot | None,
                 besides: tuple[str, ...] = ()) -> float:
        """The wait until the next task is due, leaving out the tasks in ``besides``."""
        self._sync(now_mono, slot)
        nexts = [at for task, at in self._next.items() if task not in besides]
        return max(0.0, min(nexts) - now_mono) if nexts else float("inf")

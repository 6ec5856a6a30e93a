"""Guardrails for heavy tests (bandwidth, room tests): never disturb a lesson or a budget.

A heavy test is paused during an exam window, on battery, while the PC is busy, or once
the day's byte budget is used. "Busy" means busy now *and* lately: the fresh 1 s CPU
sample is tempered by the median of the recent passive samples
(:func:`sustained_busy_pct`), so one spike (the agent's own worker starting, an
antivirus blip) does not take a PC out of a coordinated room test.
:func:`heavy_block_reason` is pure: it reads :class:`GuardInputs` and returns the reason
as a sentence naming the value (the agent puts it in a ``skipped`` result, so the
collector sees why there is no bandwidth figure), or None when the test may run.
:class:`ByteBudget` counts the bytes heavy tests moved today in a small JSON file.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.durable import atomic_write

if TYPE_CHECKING:
    from agent.config import AgentConfig

log = logging.getLogger(__name__)
CPU_SAMPLE_S = 1.0


@dataclass(frozen=True)
class GuardInputs:
    on_battery: bool | None
    """None: unknown or no battery (a desktop)."""
    battery_pct: float | None
    cpu_busy_pct: float | None
    """None: not measured (never a reason to pause)."""
    exam: bool
    bytes_today: int
    byte_budget: int
    """0: no limit."""
    exam_note: str = ""
    """The exam window's note, named in the reason."""


def _pct(v: float) -> str:
    return f"{round(v, 1):g} %"


def _amounts(used: int, budget: int) -> str:
    """``1.02 GB of 1.00 GB``: both in the budget's decimal unit."""
    scale, unit = next(((s, u) for s, u in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB"))
                        if budget >= s), (1.0, "B"))
    return f"{used / scale:.2f} {unit} of {budget / scale:.2f} {unit}"


def heavy_block_reason(inputs: GuardInputs, cfg: AgentConfig) -> str | None:
    """Why a heavy test must not run now, or None when it may."""
    if inputs.exam:
        return "paused: exam window" + (f" ({inputs.exam_note})" if inputs.exam_note else "")
    if cfg.pause_on_battery and inputs.on_battery:
        charge = "charge unknown" if inputs.battery_pct is None else _pct(inputs.battery_pct)
        return f"paused: on battery ({charge})"
    busy = inputs.cpu_busy_pct
    if busy is not None and busy >= cfg.busy_cpu_pct:
        return f"paused: PC busy (CPU {_pct(busy)} >= {_pct(cfg.busy_cpu_pct)})"
    if inputs.byte_budget > 0 and inputs.bytes_today >= inputs.byte_budget:
        return ("paused: daily byte budget used "
                f"({_amounts(inputs.bytes_today, inputs.byte_budget)})")
    return None


def _psutil_battery() -> Any:
    import psutil

    return psutil.sensors_battery() if hasattr(psutil, "sensors_battery") else None


RECENT_CPU_S = 300.0
"""Passive CPU samples younger than this temper the fresh sample."""


def sustained_busy_pct(fresh: float | None, recent: list[float]) -> float | None:
    """The CPU busy % a guardrail judges: the lower of the fresh sample and the median of
    the recent ones (the fresh one alone when there are none). A PC busy for minutes is
    high in both; a spike is high in one only."""
    if fresh is None or not recent:
        return fresh
    return min(fresh, statistics.median(recent))


def _psutil_busy(sample_s: float) -> float:
    import psutil

    return float(psutil.cpu_percent(interval=sample_s))


def read_guard_inputs(exam: bool, bytes_today: int, byte_budget: int, exam_note: str = "",
                      *, battery: Callable[[], Any] = _psutil_battery,
                      cpu_busy: Callable[[float], float] = _psutil_busy,
                      sample_s: float = CPU_SAMPLE_S) -> GuardInputs:
    """Sample the battery (``psutil.sensors_battery()``: None on a desktop) and how busy
    the CPU is over ``sample_s`` seconds; the rest comes from the caller."""
    state = battery()
    plugged = getattr(state, "power_plugged", None) if state is not None else None
    percent = getattr(state, "percent", None) if state is not None else None
    return GuardInputs(
        on_battery=None if plugged is None else not plugged,
        battery_pct=None if percent is None else float(percent),
        cpu_busy_pct=cpu_busy(sample_s), exam=exam, bytes_today=bytes_today,
        byte_budget=byte_budget, exam_note=exam_note)


class ByteBudget:
    """Bytes heavy tests moved today, in a JSON file ``{"date": "YYYY-MM-DD", "bytes": n}``.

    Another day's count reads as 0. A damaged file is logged and counted from 0: the
    budget must never stop the agent. Written atomically (:func:`agent.durable.atomic_write`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> tuple[date | None, int]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, 0
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("byte budget %s unreadable (%s): counting today from 0", self.path, exc)
            return None, 0
        try:
            data = json.loads(raw)
            day = date.fromisoformat(data["date"])
            used = data["bytes"]
            if isinstance(used, bool) or not isinstance(used, int) or used < 0:
                raise ValueError(f"bytes {used!r} is not a count")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("byte budget %s is damaged (%s: %r): counting today from 0",
                        self.path, exc, raw[:80])
            return None, 0
        return day, used

    def used_today(self, today: date) -> int:
        day, used = self._load()
        return used if day == today else 0

    def add(self, today: date, n: int) -> int:
        """Count ``n`` more bytes today; returns today's total. A write error is logged
        (the count is lost, the measurement is not)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"byte count {n!r}: expected a whole number >= 0")
        total = self.used_today(today) + n
        data = json.dumps({"date": today.isoformat(), "bytes": total}).encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, data, mode=0o600)
        except OSError as exc:
            log.warning("byte budget %s not saved (%s): %d bytes today not recorded",
                        self.path, exc, total)
        return total

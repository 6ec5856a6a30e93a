"""The supervisor's small persisted state, in the spool directory (``agent-state.json``).

What survives a restart: the last control answer (timetable, salt, pending jobs) and when
it came, the clock offset measured then, and the ids of jobs already done (so a restart
neither repeats a room test nor forgets one scheduled for later). Written atomically
(:mod:`agent.durable`); a file that cannot be read is replaced by a fresh state with a
warning, never a crash. ``flag-burst.json`` beside it is how ``classprobe flag`` tells
the supervisor it already ran a burst job on this PC.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.control import ControlError, parse_control
from agent.durable import atomic_write
from agent.wire import AgentControl

log = logging.getLogger(__name__)

STATE_FILE = "agent-state.json"
BUDGET_FILE = "byte-budget.json"
FLAG_FILE = "flag-burst.json"
MAX_DONE_JOBS = 200


def state_path(spool_root: Path) -> Path:
    return spool_root / STATE_FILE


def budget_path(spool_root: Path) -> Path:
    return spool_root / BUDGET_FILE


def flag_path(spool_root: Path) -> Path:
    return spool_root / FLAG_FILE


@dataclass
class AgentState:
    control: dict[str, Any] | None = None
    """The last control answer as the collector sent it (JSON)."""
    polled_at: float | None = None
    """Wall-clock time (epoch seconds) of that answer."""
    clock_offset_s: float | None = None
    clock_uncertainty_s: float | None = None
    done_jobs: list[str] = field(default_factory=list)
    """Job ids already run (or given up), oldest first, at most MAX_DONE_JOBS."""

    def parsed_control(self) -> AgentControl | None:
        if self.control is None:
            return None
        try:
            return parse_control(self.control)
        except ControlError as exc:
            log.warning("agent state: stored control answer unusable (%s); ignored", exc)
            return None

    def mark_done(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            if job_id not in self.done_jobs:
                self.done_jobs.append(job_id)
        del self.done_jobs[:-MAX_DONE_JOBS]

    def is_done(self, job_id: str) -> bool:
        return job_id in self.done_jobs


def _optional_float(raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key} {value!r} is not a finite number")
    return float(value)


def decode(text: str) -> AgentState:
    """Parse the state file's content; ValueError names what is wrong."""
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
    control = raw.get("control")
    if control is not None and not isinstance(control, dict):
        raise ValueError(f"control {control!r} is not an object")
    done = raw.get("done_jobs", [])
    if not isinstance(done, list) or not all(isinstance(j, str) for j in done):
        raise ValueError(f"done_jobs {done!r} is not a list of strings")
    return AgentState(control=control, polled_at=_optional_float(raw, "polled_at"),
                      clock_offset_s=_optional_float(raw, "clock_offset_s"),
                      clock_uncertainty_s=_optional_float(raw, "clock_uncertainty_s"),
                      done_jobs=done[-MAX_DONE_JOBS:])


def load_state(path: Path) -> AgentState:
    """The saved state; a missing file is a fresh state, a corrupt one too (with a warning)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return AgentState()
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("agent state %s unreadable (%s); starting afresh", path, exc)
        return AgentState()
    try:
        return decode(text)
    except ValueError as exc:
        log.warning("agent state %s is corrupt (%s); starting afresh", path, exc)
        return AgentState()


def save_state(path: Path, state: AgentState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, json.dumps(asdict(state), separators=(",", ":")).encode("utf-8"))


def _flag_ids(path: Path) -> list[str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        log.warning("%s unreadable (%s); ignored", path, exc)
        return []
    ids = raw.get("burst_job_ids") if isinstance(raw, dict) else None
    return [i for i in ids if isinstance(i, str) and i] if isinstance(ids, list) else []


def write_flag_burst(spool_root: Path, burst_job_id: str) -> None:
    """Tell the supervisor that ``classprobe flag`` already ran this burst job here."""
    spool_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = flag_path(spool_root)
    ids = [*_flag_ids(path), burst_job_id][-MAX_DONE_JOBS:]
    atomic_write(path, json.dumps({"burst_job_ids": ids}).encode("utf-8"))


def take_flag_bursts(spool_root: Path) -> list[str]:
    """The burst job ids left by ``classprobe flag`` (the file is then removed)."""
    path = flag_path(spool_root)
    ids = _flag_ids(path)
    path.unlink(missing_ok=True)
    return ids

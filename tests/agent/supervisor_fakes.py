"""Fakes for driving :class:`agent.service.Supervisor` in-process: a fake clock, a fake
worker script (it records its arguments and prints a summary), canned polls and guardrail
inputs, and a passive sample without the load probe's real 1 s wait."""

from __future__ import annotations

import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.control import PollResult, parse_control
from agent.guardrails import GuardInputs
from agent.service import Supervisor
from agent.spool import Spool
from agent.wire import Measurement, ProbeResult
from tests.agent.standin import SITE_SALT

ROOT = Path(__file__).resolve().parents[2]
MONDAY_0900 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC).timestamp()
QUIET = {"passive_interval_s": 1e6, "interval_s": 1e6, "path_interval_s": 1e6,
         "bandwidth_interval_s": 1e6, "inventory_interval_s": 1e6}
"""Nothing due for days: a test turns on only what it needs."""

FAKE_WORKER = """
import json, os, sys, time
with open(os.environ["FAKE_WORKER_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
mode = os.environ.get("FAKE_WORKER_MODE", "ok")
if mode == "hog":
    hog = b"x" * (200 * 1024 * 1024)
    time.sleep(60)
print(json.dumps({"report_id": "r1", "results": [],
                  "bandwidth_bytes": int(os.environ.get("FAKE_BYTES", "0")),
                  "upload": {"ok": os.environ.get("FAKE_UPLOAD_OK", "1") == "1",
                             "error": "collector unreachable",
                             "retry_after_s": float(os.environ.get("FAKE_RETRY_AFTER", "0"))
                                              or None}}))
"""


class FakeTime:
    def __init__(self, start: float = MONDAY_0900) -> None:
        self.now = start
        self.waits: list[float] = []
        self.on_wait: list[Any] = []

    def mono(self) -> float:
        return self.now - MONDAY_0900

    def wall(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        if self.on_wait:
            self.on_wait.pop(0)()
        return False


def calls(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def no_poll(cfg: Any, offset: float | None) -> PollResult:
    return PollResult(error="collector unreachable: test")


def sense_with(battery: bool | None = None, battery_pct: float | None = None):  # type: ignore[no-untyped-def]
    def sense(exam: bool, used: int, budget: int, note: str) -> GuardInputs:
        return GuardInputs(on_battery=battery, battery_pct=battery_pct, cpu_busy_pct=None,
                           exam=exam, bytes_today=used, byte_budget=budget, exam_note=note)
    return sense


def supervisor(config: Path, script: Path, t: FakeTime, **kw: Any) -> Supervisor:
    args: dict[str, Any] = {"poll": no_poll, "sense": sense_with(), "max_runs": 1,
                            "cpu_seconds": lambda: 0.0, **kw}
    return Supervisor(config, wait=t.wait, mono=t.mono, wall=t.wall, rng=random.Random(7),
                      worker_cmd=[sys.executable, str(script)], **args)


def control_with(jobs: list[dict[str, Any]], timetable: dict[str, Any] | None = None,
                 offset: float = 0.0, at: float = MONDAY_0900) -> PollResult:
    raw = {"server_time": datetime.fromtimestamp(at + offset, UTC).isoformat(),
           "site": "S", "room": "R", "site_salt": SITE_SALT, "timetable": timetable,
           "jobs": jobs, "poll_interval_s": 30}
    return PollResult(control=parse_control(raw), raw=raw, offset_s=offset,
                      uncertainty_s=0.001)


def quick_passive(cfg: Any, spool: Spool, salt: str, offset: float | None) -> Any:
    """A passive sample without the load probe's real 1 s wait: one load result."""
    now = datetime.now(UTC)
    return spool.add(cfg.agent_id, "test", [ProbeResult(
        probe="load", status="ok", started_at=now, finished_at=now, measurements=[
            Measurement(metric="cpu_busy_pct", value=7.0, unit="%", method="test")])],
        trigger="scheduled", clock_offset_s=offset)


def spooled(tmp_path: Path) -> list[dict[str, Any]]:
    """The reports waiting in the agent's spool, oldest first, as JSON."""
    spool = Spool(tmp_path / "spool")
    return [spool.load(item) for item in spool.pending()]

"""A worker run as the supervisor sees it: what it measures, its command line, its summary.

The supervisor (:mod:`agent.service`) starts ``python -m agent.worker`` (:mod:`agent.worker`)
with the arguments :func:`worker_args` builds, and reads back the one JSON line the worker
prints (:func:`summary_of`). When a worker produced no report (killed, crashed), the
supervisor records :func:`failure_results` instead, so a lost run still shows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config import AgentConfig
from agent.spool import Spool
from agent.wire import Job, ProbeResult, Trigger, utcnow

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One worker run: what it measures and why."""

    probes: tuple[str, ...]
    trigger: Trigger
    job: Job | None = None
    skips: dict[str, str] = field(default_factory=dict)


def job_json(job: Job) -> str:
    data = asdict(job)
    data["start_at"] = job.start_at.isoformat()
    return json.dumps(data, separators=(",", ":"))


def worker_args(config_path: Path, run: Run, upload: bool, offset: float | None) -> list[str]:
    args = ["--config", str(config_path), "--probes", ",".join(run.probes),
            "--trigger", run.trigger]
    if run.job is not None:
        args += ["--job", job_json(run.job)]
    for name, reason in run.skips.items():
        args += ["--skip", f"{name}={reason}"]
    if upload:
        args.append("--upload")
    if offset is not None:
        args += ["--clock-offset", repr(offset)]
    return args


def summary_of(stdout: str) -> dict[str, Any] | None:
    """The worker's JSON summary (its last stdout line), None if it printed none."""
    lines = stdout.strip().splitlines()
    try:
        data = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def failure_results(run: Run, reason: str) -> list[ProbeResult]:
    """What to record when a worker produced no report: every planned probe failed."""
    now = utcnow()
    probes = ("bandwidth",) if run.job is not None and run.job.kind == "room_test" \
        else run.probes
    failed = [ProbeResult(probe=p, status="failed", started_at=now, finished_at=now,
                          reason=reason) for p in probes if p not in run.skips]
    skipped = [ProbeResult(probe=p, status="skipped", started_at=now, finished_at=now,
                           reason=why) for p, why in run.skips.items()]
    return failed + skipped


def record_failure(cfg: AgentConfig, spool_root: Path, run: Run, reason: str,
                   clock_offset_s: float | None) -> None:
    """Spool a report of :func:`failure_results` (logged; an unwritable spool too)."""
    try:
        spool = Spool(spool_root, cfg.spool_max_reports, cfg.spool_max_bytes)
        report = spool.add(cfg.agent_id, __version__, failure_results(run, reason),
                           trigger=run.trigger, job_id=run.job.job_id if run.job else None,
                           clock_offset_s=clock_offset_s)
    except OSError as exc:
        log.error("cannot record the failed run (%s) in the spool: %s", reason, exc)
        return
    log.warning("run failed (%s): recorded in report %s", reason, report.report_id)

"""``classprobe flag``: a teacher or technician reports a problem in this room, now.

The flag goes to the collector (``POST /api/v1/flags``), which stores it and makes a
``burst`` job for the room's agents. This PC does not wait for its supervisor's next
poll: it runs the burst at once, in this process (:func:`agent.worker.execute`), so the
report exists even when the collector is down. When the flag could not be sent, the
burst still runs and is spooled with trigger ``burst`` and a ``failed`` result of probe
``flag`` whose reason says why (and keeps the note), so what the network was doing at
that moment still reaches the collector later, and nobody mistakes it for a flag that
was stored. When the flag was stored, the report carries the burst's job id and the
supervisor is told (``flag-burst.json``) so it does not run the same burst again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, spool_path
from agent.control import BURST_PROBES
from agent.probes import BY_NAME
from agent.spool import Spool
from agent.state import load_state, state_path, write_flag_burst
from agent.wire import FlagResponse, Job, ProbeResult, utcnow
from agent.worker import WorkerRequest, WorkerSummary, execute

log = logging.getLogger(__name__)

FLAGS_PATH = "/api/v1/flags"


@dataclass
class FlagOutcome:
    response: FlagResponse | None
    error: str | None
    summary: WorkerSummary

    def to_json(self) -> dict[str, Any]:
        return {"flag_id": self.response.flag_id if self.response else None,
                "burst_job_id": self.response.burst_job_id if self.response else None,
                "flag_error": self.error, **self.summary.to_json()}


def _detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return str(response.text[:200])
    return str(body.get("detail", body)) if isinstance(body, dict) else str(body)[:200]


def send_flag(cfg: AgentConfig, note: str) -> tuple[FlagResponse | None, str | None]:
    """POST the flag; (the collector's answer, None) or (None, why it failed)."""
    import httpx

    from agent.cycle import collector_client

    body = {"note": note, "created_at": utcnow().isoformat()}
    try:
        with collector_client(cfg) as client:
            response = client.post(FLAGS_PATH, json=body,
                                   headers={"Authorization": f"Bearer {cfg.credential}"})
    except httpx.HTTPError as exc:
        return None, f"collector unreachable: {type(exc).__name__}: {exc}"
    if response.status_code not in (200, 201):
        return None, f"collector answered {response.status_code}: {_detail(response)}"
    try:
        data = response.json()
        flag_id, burst = data["flag_id"], data.get("burst_job_id")
        if not isinstance(flag_id, str) or not (burst is None or isinstance(burst, str)):
            raise TypeError(f"flag_id {flag_id!r} / burst_job_id {burst!r}")
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"collector answered {response.status_code} without a flag id: {exc}"
    return FlagResponse(flag_id=flag_id, burst_job_id=burst), None


def not_sent_result(error: str, note: str) -> ProbeResult:
    now = utcnow()
    kept = f"; the note was: {note!r}" if note else ""
    return ProbeResult(probe="flag", status="failed", started_at=now, finished_at=now,
                       reason=f"the flag could not be sent to the collector ({error}); this "
                              f"burst was measured here at once{kept}")


def raise_flag(cfg: AgentConfig, config_path: Path, note: str,
               on_sent: Callable[[FlagResponse | None, str | None], None] = lambda r, e: None
               ) -> FlagOutcome:
    """Send the flag (``on_sent`` hears how it went before the burst starts), then measure
    the burst here; OSError if the spool cannot be written."""
    response, error = send_flag(cfg, note)
    on_sent(response, error)
    if response is not None:
        log.info("flag %s stored; burst job %s", response.flag_id, response.burst_job_id)
    root = spool_path(cfg, config_path)
    spool = Spool(root, cfg.spool_max_reports, cfg.spool_max_bytes)
    now = utcnow()
    job = None
    if response is not None and response.burst_job_id:
        job = Job(job_id=response.burst_job_id, kind="burst", start_at=now,
                  reason=f"problem flagged at {now.astimezone().strftime('%H:%M')}"
                         + (f": {note}" if note else ""))
    req = WorkerRequest(probes=tuple(p for p in BURST_PROBES if p in BY_NAME),
                        trigger="burst", job=job, upload=True,
                        extra=[] if error is None else [not_sent_result(error, note)],
                        clock_offset_s=load_state(state_path(root)).clock_offset_s)
    summary = execute(cfg, spool, req)
    if job is not None and summary.report is not None:
        write_flag_burst(root, job.job_id)
    return FlagOutcome(response, error, summary)

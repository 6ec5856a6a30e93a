"""The supervisor behind ``classprobe agent run``: plans, polls, watches, samples.

It imports only the standard library, psutil and the agent's small pure modules (config,
control, state, timetable, schedule, guardrails, watchdog): no httpx, pydantic or scapy,
so it idles in a few MB. Every measurement but one runs in a worker process
(``python -m agent.worker``, :mod:`agent.worker`) that loads what it needs and exits. The
exception is the per-minute passive sample (load, NIC rates, Wi-Fi): a process start a
minute cost more CPU than the sample itself, so the supervisor takes it
(:mod:`agent.passive`, which says why and when it does not).

Each wake:

1. reload the config file if it changed (a change takes effect without a restart);
2. poll the collector's control endpoint when due (every 60 s, or the collector's
   ``poll_interval_s``), keep the answer (timetable, jobs, site salt) and the clock offset
   (the least uncertain of the recent polls, :mod:`agent.clock_filter`) in the agent
   state (the config may be read-only under a service manager);
3. hand over bursts that ``classprobe flag`` already ran here (``flag-burst.json``), and
   send the flags teachers dropped into the inbox (:mod:`agent.flag_inbox`, looked at
   every ``INBOX_CHECK_S``) through ``classprobe flag`` with this agent's config;
4. run the next job: a room test is started ``JOB_LEAD_S`` before its aligned start (the
   worker waits for the exact moment), a burst at once; scheduled tasks wait while a room
   test is near, so a long probe cannot make the agent miss it;
5. otherwise run the tasks the planner (:mod:`agent.schedule`) says are due, in the slot
   the timetable gives for now; heavy tasks go through the guardrails
   (:mod:`agent.guardrails`) and a paused one becomes ``--skip bandwidth=<reason>``.
   The passive task alone is sampled here; its reports are uploaded by the next worker
   that uploads, or by an upload-only worker when none has for ``upload_interval_s`` and
   none is due soon;
6. sleep until the next task, poll, job or lesson boundary, or until asked to stop.

The watchdog (:mod:`agent.watchdog`) kills a worker over its memory or time limit and
the supervisor records that as a ``failed`` result in a report of its own; when the
agent's CPU over the last hour is above ``watchdog_max_cpu_pct`` every interval doubles.
After a failed upload the next workers do not upload until a backoff delay has passed.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from agent import control as control_mod
from agent import passive
from agent.clock_filter import ClockFilter, ClockSample
from agent.config import AgentConfig, ConfigError, load_config, spool_path
from agent.flag_inbox import inbox_of, relay
from agent.guardrails import (
    RECENT_CPU_S,
    ByteBudget,
    GuardInputs,
    heavy_block_reason,
    read_guard_inputs,
    sustained_busy_pct,
)
from agent.job_timing import JOB_LEAD_S, is_stale, spawn_at
from agent.schedule import TASK_PROBES, TASKS, Planner, cadence_of
from agent.state import budget_path, load_state, save_state, state_path, take_flag_bursts
from agent.timetable import Slot, Timetable, TimetableError, exam_at, locate, next_change
from agent.timetable import parse_timetable as parse_tt
from agent.uploader import Backoff
from agent.watchdog import (
    STOP_MESSAGE,
    CpuWindow,
    Watched,
    agent_cpu_seconds,
    run_watched,
    stretch_factor,
    time_limit,
)
from agent.wire import AgentControl, Job, Report
from agent.worker_call import Run, record_failure, summary_of, worker_args

log = logging.getLogger(__name__)

WORKER_CMD: tuple[str, ...] = (sys.executable, "-m", "agent.worker")
DEFAULT_POLL_S = 60.0
MAX_SLEEP_S = 600.0
PASSIVE_CLEARANCE_S = 30.0
"""Near a room test the passive sample still runs, unless the test starts within this."""
OTHER_TASKS = tuple(t for t in TASKS if t not in passive.TASKS)
INBOX_CHECK_S = 5.0
"""How often the supervisor looks for flags left by teachers (a directory listing)."""


class Supervisor:
    def __init__(self, config_path: Path, *, wait: Callable[[float], bool],
                 stopped: Callable[[], bool] = lambda: False, max_runs: int | None = None,
                 worker_cmd: Sequence[str] = WORKER_CMD,
                 mono: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, rng: random.Random | None = None,
                 poll: Callable[[AgentConfig, float | None], control_mod.PollResult] =
                 control_mod.poll,
                 sense: Callable[[bool, int, int, str], GuardInputs] = read_guard_inputs,
                 cpu_seconds: Callable[[], float] = agent_cpu_seconds,
                 sample_passive: Callable[..., Report] = passive.sample) -> None:
        self.config_path = config_path
        self.wait, self.stopped, self.max_runs = wait, stopped, max_runs
        self.worker_cmd = list(worker_cmd)
        self.mono, self.wall = mono, wall
        self._poll, self._sense, self._cpu_seconds = poll, sense, cpu_seconds
        self.passive = passive.PassiveSampler(sample_passive)
        self._mtime: int | None = None
        self.cfg = self._load() or AgentConfig()
        self.state = load_state(state_path(self.spool_root))
        self.control: AgentControl | None = self.state.parsed_control()
        self._tt_doc: dict[str, Any] | None = None
        self._tt: Timetable | None = None
        self.planner = Planner(cadence_of(self.cfg), rng or random.Random())
        self.stretch = 1.0
        self.cpu = CpuWindow()
        self.clock = ClockFilter()
        self.backoff = Backoff(self.cfg.backoff_base_s, self.cfg.backoff_cap_s)
        self.upload_after = 0.0
        self.last_upload: float | None = None
        self.next_poll = mono()
        self.runs = 0

    # -- config ---------------------------------------------------------------------------
    @property
    def spool_root(self) -> Path:
        return spool_path(self.cfg, self.config_path)

    def _load(self) -> AgentConfig | None:
        try:
            self._mtime = self.config_path.stat().st_mtime_ns
            return load_config(self.config_path)
        except (OSError, ConfigError) as exc:
            log.error("config %s not (re)loaded: %s; keeping the previous settings",
                      self.config_path, exc)
            return None

    def reload_if_changed(self) -> bool:
        try:
            mtime = self.config_path.stat().st_mtime_ns
        except OSError:
            return False
        if mtime == self._mtime:
            return False
        cfg = self._load()
        if cfg is None:
            return False
        if cfg.collector_url != self.cfg.collector_url or cfg.credential != self.cfg.credential:
            self.next_poll = self.mono()
        self.cfg = cfg
        self.planner.cadence = cadence_of(cfg).scaled(self.stretch)
        self.backoff = Backoff(cfg.backoff_base_s, cfg.backoff_cap_s)
        log.info("config %s changed: reloaded", self.config_path)
        return True

    # -- control --------------------------------------------------------------------------
    def poll_if_due(self, now: float) -> None:
        if now < self.next_poll:
            return
        if not self.cfg.enrolled:
            self.next_poll = now + DEFAULT_POLL_S
            return
        result = self._poll(self.cfg, self.state.clock_offset_s)
        interval = self.control.poll_interval_s if self.control else DEFAULT_POLL_S
        if result.control is None:
            log.warning("control poll: %s", result.error)
        else:
            self.control = result.control
            interval = result.control.poll_interval_s
            self.state.control, self.state.polled_at = result.raw, self.wall()
            if result.offset_s is not None and result.uncertainty_s is not None:
                best = self.clock.add(ClockSample(self.wall(), result.offset_s,
                                                  result.uncertainty_s))
                self.state.clock_offset_s = best.offset_s
                self.state.clock_uncertainty_s = best.uncertainty_s
            self._save_state()  # the workers take the site salt from it if the config has none
        self.next_poll = now + interval

    def _save_state(self) -> None:
        try:
            save_state(state_path(self.spool_root), self.state)
        except OSError as exc:
            log.error("cannot save the agent state: %s", exc)

    def collector_now(self) -> datetime:
        return datetime.fromtimestamp(self.wall() + (self.state.clock_offset_s or 0.0), UTC)

    def timetable(self) -> Timetable | None:
        doc = self.control.timetable if self.control else None
        if doc != self._tt_doc:
            self._tt_doc, self._tt = doc, None
            if doc is not None:
                try:
                    self._tt = parse_tt(doc)
                except TimetableError as exc:
                    log.warning("the collector's timetable is unusable (%s): measuring as "
                                "if there were none", exc)
        return self._tt

    def slot(self) -> Slot | None:
        tt = self.timetable()
        return None if tt is None else locate(tt, self.collector_now())

    # -- jobs -----------------------------------------------------------------------------
    def _spawn_at(self, job: Job) -> float:
        return spawn_at(job, self.state.clock_offset_s, self.wall())

    def pending_jobs(self) -> list[Job]:
        """Jobs not yet run, soonest first (stale ones are dropped with a warning)."""
        done = list(self.state.done_jobs)
        for job_id in take_flag_bursts(self.spool_root):
            log.info("burst %s already ran through `classprobe flag`", job_id)
            self.state.mark_done([job_id])
        jobs = [] if self.control is None else self.control.jobs
        now = self.collector_now().timestamp()
        fresh = [job for job in jobs if not self.state.is_done(job.job_id)]
        for job in [job for job in fresh if is_stale(job, now)]:
            log.warning("job %s (%s at %s) is too old to run now; dropped", job.job_id,
                        job.kind, job.start_at.isoformat())
            self.state.mark_done([job.job_id])
            fresh.remove(job)
        if self.state.done_jobs != done:
            self._save_state()
        return sorted(fresh, key=self._spawn_at)

    def heavy_reason(self) -> str | None:
        tt = self.timetable()
        window = exam_at(tt, self.collector_now()) if tt else None
        budget = ByteBudget(budget_path(self.spool_root))
        inputs = self._sense(window is not None, budget.used_today(date.today()),
                             self.cfg.daily_byte_budget, window.note if window else "")
        recent = self.passive.cpu_since(self.mono() - RECENT_CPU_S)
        inputs = replace(inputs, cpu_busy_pct=sustained_busy_pct(inputs.cpu_busy_pct, recent))
        return heavy_block_reason(inputs, self.cfg)

    def job_run(self, job: Job) -> Run:
        if job.kind == "burst":
            probes = tuple(control_mod.BURST_PROBES)
            return Run(probes, "burst", job)
        reason = self.heavy_reason()
        return Run(("bandwidth",), "job", job, {"bandwidth": reason} if reason else {})

    def scheduled_run(self, now: float, only: tuple[str, ...] | None = None) -> Run | None:
        tasks = self.planner.due(now, self.slot(), only)
        if not tasks:
            return None
        probes = tuple(p for t in tasks for p in TASK_PROBES[t])
        skips = {}
        if "bandwidth" in tasks and self.cfg.bandwidth:
            reason = self.heavy_reason()
            if reason:
                skips["bandwidth"] = reason
        log.info("due: %s", ", ".join(tasks))
        return Run(probes, "scheduled", None, skips)

    # -- running a worker -----------------------------------------------------------------
    def _upload_now(self, run: Run) -> bool:
        now = self.mono()
        if now < self.upload_after:  # backing off after a failed upload
            return False
        # an upload-only run (no probes) was started because an upload is due
        passive_only = run.trigger == "scheduled" and bool(run.probes) \
            and set(run.probes) <= set(passive.PROBES)
        if passive_only and self._uploaded_lately(now):
            return False  # batched: the next upload takes these reports along
        self.last_upload = now
        return True

    def _uploaded_lately(self, now: float) -> bool:
        """An upload happened less than ``upload_interval_s`` ago."""
        return self.last_upload is not None \
            and now - self.last_upload < self.cfg.upload_interval_s

    def execute(self, run: Run) -> Watched:
        upload = self._upload_now(run)
        args = worker_args(self.config_path, run, upload, self.state.clock_offset_s)
        lead = 0.0
        if run.job is not None and run.job.kind == "room_test":
            lead = max(0.0, self._spawn_at(run.job) + JOB_LEAD_S - self.wall())
        limit = time_limit(self.cfg, run.probes, run.job, lead)
        watched = run_watched([*self.worker_cmd, *args], limit_s=limit,
                              max_rss_mb=self.cfg.watchdog_max_rss_mb, stopped=self.stopped)
        self.runs += 1
        for line in watched.stderr.splitlines():
            log.info("worker: %s", line)
        summary = summary_of(watched.stdout) if watched.killed is None else None
        if summary is None:
            if watched.killed is None and self.stopped():
                watched.killed = STOP_MESSAGE  # e.g. Ctrl-C reached the worker too
            why = watched.killed or (f"worker exited with code {watched.returncode} "
                                     "without a report")
            self._record_failure(run, why)
        else:
            self._account(summary, upload)
        if run.job is not None and watched.killed != STOP_MESSAGE:
            self.state.mark_done([run.job.job_id])
            self._save_state()
        return watched

    def _record_failure(self, run: Run, reason: str) -> None:
        record_failure(self.cfg, self.spool_root, run, reason, self.state.clock_offset_s)

    def _account(self, summary: dict[str, Any], upload_tried: bool) -> None:
        used = summary.get("bandwidth_bytes")
        if isinstance(used, int) and used > 0:
            total = ByteBudget(budget_path(self.spool_root)).add(date.today(), used)
            log.info("bandwidth used %d bytes; %d today", used, total)
        up = summary.get("upload")
        if upload_tried and isinstance(up, dict):
            if up.get("ok"):
                self.backoff.reset()
            else:
                delay = self.backoff.next_delay()
                asked = up.get("retry_after_s")  # the collector's Retry-After, capped
                if isinstance(asked, int | float) and asked > delay:
                    delay = float(asked)
                self.upload_after = self.mono() + delay
                log.info("upload failed (%s); next try in %.0f s or later", up.get("error"),
                         delay)
        statuses = ", ".join(f"{r.get('probe')} {r.get('status')}"
                             for r in summary.get("results", []) if isinstance(r, dict))
        log.info("report %s: %s", summary.get("report_id"), statuses or "no results")

    # -- the passive sample, taken here (agent.passive) --------------------------------------
    def samples_passive_here(self, run: Run) -> bool:
        return run.probes == passive.PROBES and not run.skips \
            and passive.runs_in_process(self.cfg)

    def take_passive_sample(self, now: float, upload: bool = True) -> Report | None:
        """Sample, spool, and (``upload``) start an upload-only worker when the reports
        would wait long."""
        self.runs += 1
        salt = self.control.site_salt if self.control else ""
        report = self.passive.take(self.cfg, self.spool_root, salt, self.state.clock_offset_s,
                                   now)
        if upload and report is not None and self._passive_upload_due(now):
            self.execute(Run((), "scheduled"))
        return report

    def _passive_upload_due(self, now: float) -> bool:
        """Upload now unless one happened within ``upload_interval_s``, uploads are backing
        off, or a worker (which uploads) is due within half that interval anyway. The last
        run before ``max_runs`` (``agent run --cycles N``) always uploads: no run follows."""
        if now < self.upload_after:
            return False
        if self.max_runs is not None and self.runs >= self.max_runs:
            return True
        if self._uploaded_lately(now):
            return False
        return self.planner.next_due(now, self.slot(), besides=passive.TASKS) \
            > self.cfg.upload_interval_s / 2

    def relay_flags(self) -> None:
        """Send each flag a teacher left in the inbox (:func:`agent.flag_inbox.relay`)."""
        self.runs += relay(self.spool_root, self.config_path, self.cfg, self.stopped)

    # -- the loop -------------------------------------------------------------------------
    def check_cpu(self, now: float) -> None:
        self.cpu.add(now, self._cpu_seconds())
        factor = stretch_factor(self.cpu.percent(), self.cfg.watchdog_max_cpu_pct,
                                self.cpu.span())
        if factor != self.stretch:
            log.warning("agent CPU %.2f %% of a core over %.0f s (limit %g %%): intervals x%g",
                        self.cpu.percent() or 0.0, self.cpu.span(),
                        self.cfg.watchdog_max_cpu_pct, factor)
            self.stretch = factor
            self.planner.cadence = cadence_of(self.cfg).scaled(factor)

    def step(self) -> float:
        """One wake: returns how long to sleep before the next."""
        self.reload_if_changed()
        now = self.mono()
        self.check_cpu(now)
        self.poll_if_due(now)
        self.relay_flags()
        jobs = self.pending_jobs()
        job_in = self._spawn_at(jobs[0]) - self.wall() if jobs else None
        if job_in is not None and job_in <= 0:
            self.execute(self.job_run(jobs[0]))
            return 0.0
        longest = time_limit(self.cfg, ("path", "wifi", "bandwidth"), None)
        near = job_in is not None and job_in < longest
        # near a room test only the passive sample taken here runs: it takes a second, and
        # the guardrails judge "busy" on its CPU readings
        passive_only = near and passive.runs_in_process(self.cfg) \
            and job_in is not None and job_in > PASSIVE_CLEARANCE_S
        if not near or passive_only:
            run = self.scheduled_run(now, passive.TASKS if passive_only else None)
            if run is not None:
                if self.samples_passive_here(run):
                    self.take_passive_sample(now, upload=not near)
                else:
                    self.execute(run)
                return 0.0
        waits = [self.next_poll - now, MAX_SLEEP_S]
        if inbox_of(self.spool_root).is_dir():  # made by `agent install`, for teachers
            waits.append(INBOX_CHECK_S)
        if job_in is not None:
            waits.append(job_in)
        if not near:
            waits.append(self.planner.next_due(now, self.slot()))
        elif passive_only:
            waits.append(self.planner.next_due(now, self.slot(), besides=OTHER_TASKS))
        tt = self.timetable()
        change = next_change(tt, self.collector_now()) if tt else None
        if change is not None:
            waits.append((change - self.collector_now()).total_seconds())
        return max(0.01, min(waits))

    def run(self) -> int:
        """Wake, act, sleep until stopped or ``max_runs`` measurement runs (a passive sample
        taken here counts, and so does the upload-only worker after it); returns the runs."""
        while not self.stopped():
            delay = self.step()
            if self.max_runs is not None and self.runs >= self.max_runs:
                break
            if delay > 0 and self.wait(delay):
                break
        return self.runs

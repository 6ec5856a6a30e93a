"""One measurement run in a short-lived process: ``python -m agent.worker ...``.

The supervisor (:mod:`agent.service`) stays small and starts a worker for each run; the
worker imports what the probes need, commits ONE report to the spool, uploads the spool
if asked, prints one JSON summary line on stdout and exits::

    python -m agent.worker --config agent.toml --probes latency,wifi --trigger scheduled \\
        [--job JSON] [--skip bandwidth="paused: on battery (43 %)"] [--upload] \\
        [--clock-offset 0.42]

Exit codes: 0 the report is spooled (whatever the probes or the upload found); 1 the spool
could not be written; 2 usage or configuration error.

A ``room_test`` job is a lesson-start simulation: every agent of the room loads the
network at the same moment. The job's ``start_at`` is on the collector's clock; this agent
starts at ``start_at - clock_offset`` on its own clock, so all agents start together even
when their clocks disagree. Download runs for ``duration_s``; upload (when asked) starts
``PHASE_GAP_S`` after the download window ends, again aligned, so the room's uploads
overlap too. Both run the whole window (no early stop when the rate is stable: the room
total needs every device loading the link at once) with no byte cap worth the name.

An agent that reaches a window more than ``LATE_TOLERANCE_S`` late still measures, but
only what is left of the window (running past its end would measure a less loaded link
and inflate this device's share); the result's ``reason`` says how late it started. A
window already over is a ``skipped`` result saying so. A ``burst`` job runs the light
probes (:data:`agent.control.BURST_PROBES`) at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config import AgentConfig, ConfigError, load_config, spool_path
from agent.probes import BY_NAME
from agent.probes.results import ResultBuilder
from agent.runner import run_probes
from agent.spool import Spool
from agent.uploader import UploadOutcome
from agent.wire import ROOM_TEST_PHASE_GAP_S, Job, ProbeResult, Report, Trigger

log = logging.getLogger(__name__)

TRIGGERS: tuple[Trigger, ...] = ("scheduled", "manual", "job", "burst")
LATE_TOLERANCE_S = 2.0
PHASE_GAP_S = ROOM_TEST_PHASE_GAP_S
ROOM_TEST_MAX_BYTES = 10**13
"""No practical cap: a room test measures for its whole window."""
EXIT_OK, EXIT_SPOOL, EXIT_USAGE = 0, 1, 2


@dataclass
class WorkerRequest:
    probes: tuple[str, ...] = ()
    trigger: Trigger = "scheduled"
    job: Job | None = None
    skips: dict[str, str] = field(default_factory=dict)
    """Probe name -> why it did not run (guardrails): a skipped result each."""
    extra: list[ProbeResult] = field(default_factory=list)
    """Results made by the caller (``classprobe flag``: the flag could not be sent)."""
    upload: bool = False
    clock_offset_s: float | None = None


@dataclass
class WorkerSummary:
    report: Report | None
    bandwidth_bytes: int
    upload: UploadOutcome | None

    def to_json(self) -> dict[str, Any]:
        report, up = self.report, self.upload
        return {
            "report_id": str(report.report_id) if report else None,
            "trigger": report.trigger if report else None,
            "job_id": report.job_id if report else None,
            "results": [{"probe": r.probe, "target": r.target, "status": r.status,
                         "reason": r.reason} for r in (report.results if report else [])],
            "bandwidth_bytes": self.bandwidth_bytes,
            "upload": None if up is None else {
                "ok": up.ok, "error": up.error, "accepted": up.accepted,
                "duplicates": up.duplicates, "pending": up.pending,
                "retry_after_s": up.retry_after_s}}


def bandwidth_bytes(results: Iterable[ProbeResult]) -> int:
    """Bytes the bandwidth results say they moved (their ``bytes`` measurements)."""
    return int(sum(m.value or 0 for r in results if r.probe == "bandwidth"
                   for m in r.measurements if m.metric == "bytes"))


# -- room tests -----------------------------------------------------------------------------
def aligned_start(start_at: datetime, clock_offset_s: float | None) -> float:
    """The agent wall-clock time (epoch s) at which the collector's clock reads ``start_at``."""
    return start_at.timestamp() - (clock_offset_s or 0.0)


def sleep_until(target: float, wall: Callable[[], float],
                sleep: Callable[[float], None]) -> None:
    """Sleep until ``wall() >= target``, finishing with short sleeps for precision."""
    while (left := target - wall()) > 0:
        sleep(min(left - 0.02, 1.0) if left > 0.05 else min(left, 0.002))


def late_note(late_s: float, start_at: datetime, window_s: float, duration_s: float) -> str:
    stamp = start_at.astimezone(UTC).strftime("%H:%M:%S.%f")[:-3]
    return (f"started {late_s:.1f} s late (aligned start {stamp} UTC on the collector's "
            f"clock); measured the last {window_s:.1f} s of the {duration_s:g} s window")


def _with_note(result: ProbeResult, note: str) -> ProbeResult:
    return replace(result, reason="; ".join(p for p in (note, result.reason) if p))


def room_test(cfg: AgentConfig, job: Job, clock_offset_s: float | None, *,
              wall: Callable[[], float] = time.time,
              sleep: Callable[[float], None] = time.sleep) -> list[ProbeResult]:
    """Each direction of the job, aligned to the collector's clock (see the module doc)."""
    from agent.probes.bandwidth import (
        BandwidthOptions,
        measure_download,
        measure_upload,
        speed_urls,
    )

    default_down, default_up = speed_urls(cfg.collector_url) if cfg.collector_url else ("", "")
    results: list[ProbeResult] = []
    phases = [d for d in ("download", "upload") if d in job.directions]
    for i, direction in enumerate(phases):
        phase_at = job.start_at.timestamp() + i * (job.duration_s + PHASE_GAP_S)
        phase_start = datetime.fromtimestamp(phase_at, UTC)
        url = (job.download_url or default_down) if direction == "download" \
            else (job.upload_url or default_up)
        r = ResultBuilder("bandwidth", target=url or None)
        if not url:
            results.append(r.skipped(f"room test {direction}: no URL and not enrolled"))
            continue
        begin = aligned_start(phase_start, clock_offset_s)
        end = begin + job.duration_s
        if wall() < begin:
            log.info("room test %s: %s in %.2f s", job.job_id, direction, begin - wall())
            sleep_until(begin, wall, sleep)
        late = wall() - begin
        window = end - wall()
        if window <= 0:
            results.append(r.skipped(
                f"room test {direction} window ended {-window:.1f} s before this agent "
                f"could start ({late:.1f} s after the aligned start)"))
            continue
        opts = BandwidthOptions(seconds=window, streams=job.streams,
                                max_bytes=ROOM_TEST_MAX_BYTES,
                                timeout_s=max(cfg.timeout_s, 5.0), ca_bundle=cfg.ca_bundle,
                                stable_span_s=math.inf)  # never stop early: whole window
        try:
            if direction == "download":
                result = measure_download(url, opts, sized=job.download_url is None)
            else:
                result = measure_upload(url, opts)
        except Exception as exc:  # a bug in one direction must not lose the other's result
            log.exception("room test %s crashed", direction)
            result = r.failed(f"probe crashed: {type(exc).__name__}: {exc}")
        if late > LATE_TOLERANCE_S:
            result = _with_note(result, late_note(late, phase_start, window, job.duration_s))
        results.append(result)
    return results


# -- one run --------------------------------------------------------------------------------
def measure(cfg: AgentConfig, req: WorkerRequest, *, wall: Callable[[], float] = time.time,
            sleep: Callable[[float], None] = time.sleep) -> list[ProbeResult]:
    """The results of the request: probes (or the room test), skips and extras."""
    skipped = [ResultBuilder(name).skipped(reason) for name, reason in req.skips.items()]
    if req.job is not None and req.job.kind == "room_test":
        if "bandwidth" in req.skips:
            return [*req.extra, *skipped]
        return [*req.extra, *room_test(cfg, req.job, req.clock_offset_s, wall=wall,
                                       sleep=sleep), *skipped]
    specs = [BY_NAME[name] for name in req.probes]
    return [*req.extra, *run_probes(cfg, specs, skip=req.skips), *skipped]


def execute(cfg: AgentConfig, spool: Spool, req: WorkerRequest, *,
            wall: Callable[[], float] = time.time,
            sleep: Callable[[float], None] = time.sleep) -> WorkerSummary:
    """Measure, commit one report (raises OSError if the spool cannot be written), upload."""
    results = measure(cfg, req, wall=wall, sleep=sleep)
    report = None
    if results:
        report = spool.add(cfg.agent_id, __version__, results, trigger=req.trigger,
                           job_id=req.job.job_id if req.job else None,
                           clock_offset_s=req.clock_offset_s)
    outcome = None
    if req.upload and cfg.enrolled:
        from agent.cycle import collector_client
        from agent.uploader import Uploader

        with collector_client(cfg) as client:
            outcome = Uploader(client, spool, cfg.credential, cfg.upload_batch).drain()
        if not outcome.ok:
            log.warning("upload: %s; %d report(s) stay spooled", outcome.error,
                        outcome.pending)
    return WorkerSummary(report, bandwidth_bytes(results), outcome)


# -- command line ---------------------------------------------------------------------------
def _skip(text: str) -> tuple[str, str]:
    name, sep, reason = text.partition("=")
    if not sep or not name.strip() or not reason.strip():
        raise argparse.ArgumentTypeError(f"--skip {text!r}: expected NAME=REASON")
    return name.strip(), reason.strip()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agent.worker",
                                description="one classprobe measurement run")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--probes", default="", help="comma-separated probe names")
    p.add_argument("--trigger", choices=TRIGGERS, default="scheduled")
    p.add_argument("--job", default=None, help="the job as JSON (room_test or burst)")
    p.add_argument("--skip", type=_skip, action="append", default=[],
                   metavar="NAME=REASON", help="record NAME as skipped with REASON")
    p.add_argument("--upload", action="store_true", help="upload the spool afterwards")
    p.add_argument("--clock-offset", type=float, default=None,
                   help="collector clock minus agent clock, seconds")
    return p


def request_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> WorkerRequest:
    names = tuple(n.strip() for n in args.probes.split(",") if n.strip())
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"--probes: unknown probe(s) {', '.join(unknown)} "
                     f"(known: {', '.join(BY_NAME)})")
    job = None
    if args.job is not None:
        # imported here: agent.control loads urllib.request and ssl, which a scheduled
        # run of the light probes does not need (see benchmarks/footprint.py)
        from agent.control import BURST_PROBES, ControlError, parse_job

        try:
            job = parse_job(json.loads(args.job))
        except (ValueError, ControlError) as exc:
            parser.error(f"--job: {exc}")
        if job.kind == "burst" and not names:
            names = tuple(n for n in BURST_PROBES if n in BY_NAME)
        wanted = "job" if job.kind == "room_test" else "burst"
        if args.trigger != wanted:
            parser.error(f"--job of kind {job.kind} needs --trigger {wanted}, "
                         f"got {args.trigger}")
    offset = args.clock_offset
    if offset is not None and not math.isfinite(offset):
        parser.error(f"--clock-offset {offset!r} is not a finite number")
    return WorkerRequest(probes=names, trigger=args.trigger, job=job, skips=dict(args.skip),
                         upload=args.upload, clock_offset_s=offset)


def salt_from_state(spool_root: Path) -> str:
    """The site salt of the last control answer: the service's config may be read-only
    (an agent enrolled before the collector handed salts out has none in it)."""
    from agent.state import load_state, state_path  # loads agent.control: only when needed

    control = load_state(state_path(spool_root)).parsed_control()
    return control.site_salt if control else ""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    # no timestamp: the supervisor logs these lines with its own
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    req = request_of(parser, args)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"classprobe worker: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    root = spool_path(cfg, args.config)
    if not cfg.site_salt:
        cfg.site_salt = salt_from_state(root)
    try:
        spool = Spool(root, cfg.spool_max_reports, cfg.spool_max_bytes)
        summary = execute(cfg, spool, req)
    except OSError as exc:
        print(f"classprobe worker: cannot write the report to the spool: {exc}",
              file=sys.stderr)
        return EXIT_SPOOL
    print(json.dumps(summary.to_json(), separators=(",", ":")), flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

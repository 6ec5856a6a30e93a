"""Ingest load: many simulated agents post report batches to a real collector on loopback.

``python -m benchmarks.load [--agents 1000] [--seconds 30] [--backend sqlite postgresql]
[--workers 1 2] [--batch 20] [--measurements N] [--concurrency 64] [--json]``

For every backend and worker count: a fresh database, a real collector (``uvicorn
collector.app:app_from_env --factory --workers N``), N agents enrolled through the API,
then for ``--seconds`` the agents post batches of ``--batch`` reports (an agent draining
its spool after an outage), with at most ``--concurrency`` requests in flight. The reports
are shaped like a real agent's uploads (:mod:`benchmarks.load_shape`: 5 passive reports of
21 measurements and 1 latency report of 69, ~29 on average); ``--measurements N`` gives
every report N measurements instead.

It prints reports/s, measurements/s, p50/p99 latency per request, errors, and where the
machine's CPU went (cores busy: the load generator itself, the collector processes, the
PostgreSQL server, the whole machine — other jobs on it included), with the load average,
and a goal line (PASS/MISS: >= 1,000 reports/s and >= 50,000 measurements/s). A benchmark
reports; it asserts nothing. PostgreSQL is a throwaway server (``tests.pg.server``, fsync
off) unless ``--pg-url`` names one; it is skipped with the reason when it cannot be started.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from benchmarks.load_client import KeepAliveConnection, ProtocolError
from benchmarks.load_cpu import Cpu, cpu_meter
from benchmarks.load_shape import AGENT_MIX, BatchStamp, uniform

ROOT = Path(__file__).resolve().parents[1]
GOAL_REPORTS_S = 1_000.0
GOAL_MEASUREMENTS_S = 50_000.0
ENROL_ATTEMPTS = 3
"""An enrolment that fails in transport is tried again (1,000 agents once ended a run with
``httpx.ReadError``); a retried one may leave an extra agent behind, harmless here."""


@dataclass
class Result:
    backend: str
    workers: int
    agents: int
    seconds: float
    batch: int
    measurements_per_report: float
    requests: int = 0
    reports: int = 0
    measurements: int = 0
    reports_s: float = 0.0
    measurements_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    cpu: Cpu = field(default_factory=Cpu)
    skipped: str | None = None

    @property
    def goal(self) -> str:
        if self.skipped:
            return "-"
        ok = self.reports_s >= GOAL_REPORTS_S and self.measurements_s >= GOAL_MEASUREMENTS_S
        return "PASS" if ok else "MISS"


# -- the collector under test -----------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def prepare_database(url: str) -> str:
    """Create the tables once (not racing N workers) and a site; its enrolment token."""
    from sqlmodel import Session

    from collector.db import init_db, make_engine
    from collector.services.sites import create_site

    engine = make_engine(url)
    init_db(engine)
    with Session(engine) as session:
        token = create_site(session, f"load-{uuid.uuid4().hex[:8]}")
    engine.dispose()
    return token


@contextmanager
def collector(url: str, data_dir: Path, workers: int,
              options: tuple[str, ...] = ()) -> Iterator[tuple[str, int]]:
    """The base URL of a started collector, and its (uvicorn's) process id."""
    port = free_port()
    env = {**os.environ, "CLASSPROBE_DATABASE_URL": url, "CLASSPROBE_DATA_DIR": str(data_dir),
           "CLASSPROBE_NOTIFY_INTERVAL_S": "0",
           # a few simulated agents post far more often than real ones: no per-agent limit
           "CLASSPROBE_AGENT_RATE_PER_MINUTE": "100000000"}
    log = (data_dir / f"collector-{workers}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "collector.app:app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--log-level", "warning", "--no-access-log", *options],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"collector exited; see {log.name}")
            try:
                if httpx.get(f"{base}/speed/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"collector did not come up; see {log.name}")
            time.sleep(0.2)
        yield base, proc.pid
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


# -- the agents ---------------------------------------------------------------------------
async def enrol_agents(client: httpx.AsyncClient, token: str, count: int,
                       concurrency: int) -> list[tuple[str, str]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> tuple[str, str]:
        async with gate:
            for attempt in range(1, ENROL_ATTEMPTS + 1):
                try:
                    r = await client.post("/api/v1/enrol", json={"token": token,
                                                                 "room": f"Room {i % 40}"})
                    break
                except httpx.TransportError:  # a kept-alive connection the server closed
                    if attempt == ENROL_ATTEMPTS:
                        raise
            r.raise_for_status()
            body = r.json()
            return str(body["agent_id"]), str(body["credential"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def drive(base: str, token: str, res: Result, concurrency: int, stamp: BatchStamp,
                pids: tuple[int, int | None]) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        agents = await enrol_agents(client, token, res.agents, concurrency)
    host, port = base.removeprefix("http://").rsplit(":", 1)
    turn = itertools.cycle(agents)
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    stop_at = time.monotonic() + res.seconds

    async def worker() -> None:
        conn = KeepAliveConnection(host, int(port))
        while time.monotonic() < stop_at:
            agent_id, credential = next(turn)
            body = stamp.body(agent_id)
            t0 = time.perf_counter()
            try:
                r = await asyncio.wait_for(conn.post("/api/v1/reports", body, {
                    "Authorization": f"Bearer {credential}",
                    "Content-Type": "application/json"}), timeout=60)
            except (OSError, ProtocolError, asyncio.IncompleteReadError) as exc:  # timeouts too
                errors[type(exc).__name__] += 1
                continue
            latencies.append(time.perf_counter() - t0)
            if r.status != 200:
                errors[f"HTTP {r.status}"] += 1
                continue
            stored = len(json.loads(r.body)["accepted"])
            if stored != stamp.reports:  # fresh ids every upload: all must be new
                errors["not all stored"] += 1
            res.reports += stored
            res.measurements += round(stored * stamp.measurements / stamp.reports)
        await conn.close()

    meter = cpu_meter(*pids)
    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    res.cpu = meter()
    res.requests = len(latencies)
    res.reports_s = res.reports / elapsed
    res.measurements_s = res.measurements / elapsed
    if latencies:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        res.p50_ms, res.p99_ms = cuts[49] * 1000, cuts[98] * 1000
    res.errors = dict(errors)


# -- backends -----------------------------------------------------------------------------
@contextmanager
def database(backend: str, workdir: Path, name: str,
             pg_url: str | None) -> Iterator[tuple[str, int | None]]:
    """A fresh database's URL, and the process id of its server (None: none of ours)."""
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'{name}.db'}", None
        return
    if pg_url:
        yield pg_url, None
        return
    from tests.pg.server import PgServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    pg_dir = Path(tempfile.mkdtemp(prefix="classprobe-loadpg-"))
    server = PgServer.start(pg_dir)
    try:
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
        yield server.create_database(name), postmaster
    finally:
        server.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)


def run_one(backend: str, workers: int, args: argparse.Namespace, workdir: Path) -> Result:
    kinds = AGENT_MIX if args.measurements is None else (uniform(args.measurements),)
    stamp = BatchStamp.build(kinds, args.batch)
    res = Result(backend, workers, args.agents, args.seconds, args.batch,
                 stamp.measurements / stamp.reports)
    try:
        with database(backend, workdir, f"load_{backend}_{workers}", args.pg_url) as (url, db):
            token = prepare_database(url)
            with collector(url, workdir, workers, tuple(args.uvicorn.split())) as (base, pid):
                asyncio.run(drive(base, token, res, args.concurrency, stamp, (pid, db)))
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        res.skipped = f"{type(exc).__name__}: {exc}"
    return res


def table(results: list[Result]) -> str:
    head = (f"{'backend':<11}{'workers':>8}{'reports/s':>10}{'meas/s':>8}{'m/rep':>6}"
            f"{'p50 ms':>8}{'p99 ms':>8}{'requests':>9}  {'errors':<12}{'goal':<6}"
            f"{'cpu ms/rep':>10}  cores busy: gen/coll/db/all, load")
    lines = [head, "-" * len(head)]
    for r in results:
        if r.skipped:
            lines.append(f"{r.backend:<11}{r.workers:>8}  skipped: {r.skipped}")
            continue
        errs = ",".join(f"{k}={v}" for k, v in r.errors.items()) or "0"
        c = r.cpu
        lines.append(f"{r.backend:<11}{r.workers:>8}{r.reports_s:>10.0f}{r.measurements_s:>8.0f}"
                     f"{r.measurements_per_report:>6.1f}{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}"
                     f"{r.requests:>9}  {errs:<11} {r.goal:<6}{c.ms_per_report(r.reports_s):>10.2f}"
                     f"  {c.generator:.2f}/{c.collector:.2f}/"
                     f"{c.database:.2f}/{c.machine:.2f}, {c.load_average:.1f}")
    lines.append(f"goal: >= {GOAL_REPORTS_S:,.0f} reports/s and >= {GOAL_MEASUREMENTS_S:,.0f} "
                 f"measurements/s on {os.cpu_count()} cores (load generator on the same cores)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.split(
        "\n")[0])
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--backend", nargs="+", choices=["sqlite", "postgresql"],
                   default=["sqlite", "postgresql"])
    p.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    p.add_argument("--batch", type=int, default=20, help="reports per upload")
    p.add_argument("--measurements", type=int, default=None,
                   help="measurements in every report (default: the agent mix of "
                        "benchmarks/load_shape.py, ~29 per report)")
    p.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    p.add_argument("--pg-url", default=None, help="use this PostgreSQL database "
                   "(its rows are kept) instead of a throwaway server")
    p.add_argument("--uvicorn", default="", metavar="OPTIONS",
                   help="extra uvicorn options, e.g. '--http h11 --loop asyncio' (default: "
                        "uvicorn's choice: httptools and uvloop when installed)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    for name in ("agents", "batch", "measurements", "concurrency"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="classprobe-load-") as tmp:
        for backend in args.backend:
            for workers in args.workers:
                results.append(run_one(backend, workers, args, Path(tmp)))
                if not args.json:
                    print(table(results[-1:]).splitlines()[2], file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps([{**asdict(r), "goal": r.goal} for r in results], indent=2))
    else:
        print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

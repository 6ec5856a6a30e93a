"""Ingest load: many simulated agents post report batches to a real collector on loopback.

``python -m benchmarks.load [--agents 1000] [--seconds 30] [--backend sqlite postgresql]
[--workers 1 2] [--batch 20] [--measurements 25] [--concurrency 64] [--json]``

For every backend and worker count: a fresh database, a real collector (``uvicorn
collector.app:app_from_env --factory --workers N``), N agents enrolled through the API,
then for ``--seconds`` the agents post batches of ``--batch`` reports, each a realistic
cycle of ``--measurements`` measurements, with at most ``--concurrency`` requests in flight.
It prints reports/s, measurements/s, p50/p99 latency per request and errors, and a goal
line (PASS/MISS: >= 1,000 reports/s and >= 50,000 measurements/s). A benchmark reports;
it asserts nothing. PostgreSQL is a throwaway server (``tests.pg.server``) unless
``--pg-url`` names one; it is skipped with the reason when it cannot be started.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
GOAL_REPORTS_S = 1_000.0
GOAL_MEASUREMENTS_S = 50_000.0
# (probe, target, metric, unit, method, value): one cycle's worth, repeated to the count asked
CYCLE = [("latency", "teams.microsoft.com:443", "tcp_connect_ms", "ms", "tcp", 21.5),
         ("latency", "teams.microsoft.com:443", "tls_handshake_ms", "ms", "tls", 48.0),
         ("dns", "teams.microsoft.com", "dns_ms", "ms", "getaddrinfo", 3.2),
         ("icmp", "10.0.0.1", "icmp_rtt_ms", "ms", "icmp_echo", 1.4),
         ("icmp", "10.0.0.1", "loss_pct", "%", "icmp_echo", 0.0),
         ("load", None, "cpu_busy_pct", "%", "psutil", 12.0),
         ("load", None, "ram_used_pct", "%", "psutil", 55.0)]
STATS = ["p50", "p95", "max", "min"]


@dataclass
class Result:
    backend: str
    workers: int
    agents: int
    seconds: float
    batch: int
    measurements_per_report: int
    requests: int = 0
    reports: int = 0
    measurements: int = 0
    reports_s: float = 0.0
    measurements_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def goal(self) -> str:
        if self.skipped:
            return "-"
        ok = self.reports_s >= GOAL_REPORTS_S and self.measurements_s >= GOAL_MEASUREMENTS_S
        return "PASS" if ok else "MISS"


def report_template(measurements: int) -> str:
    """A report as JSON text with ``{rid}``/``{aid}`` holes (cheap to stamp per upload)."""
    now = datetime.now(UTC)
    results: dict[tuple[str, str | None], list[dict[str, object]]] = {}
    for i in range(measurements):
        probe, target, metric, unit, method, value = CYCLE[i % len(CYCLE)]
        stat = STATS[(i // len(CYCLE)) % len(STATS)]
        results.setdefault((probe, target), []).append(
            {"metric": metric, "unit": unit, "method": method, "value": value + i % 5,
             "stat": stat, "samples": 5})
    body = {"schema_version": 1, "report_id": "@RID@", "agent_id": "@AID@",
            "created_at": now.isoformat(), "agent_version": "0.1.0", "spool_dropped": 0,
            "trigger": "scheduled",
            "results": [{"probe": probe, "target": target, "status": "ok",
                         "started_at": (now - timedelta(seconds=3)).isoformat(),
                         "finished_at": now.isoformat(), "measurements": ms}
                        for (probe, target), ms in results.items()]}
    text = json.dumps(body, separators=(",", ":")).replace("{", "{{").replace("}", "}}")
    return text.replace("@RID@", "{rid}").replace("@AID@", "{aid}")


def batch_body(template: str, agent_id: str, count: int) -> bytes:
    reports = ",".join(template.format(rid=uuid.uuid4(), aid=agent_id) for _ in range(count))
    return f'{{"schema_version":1,"reports":[{reports}]}}'.encode()


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
def collector(url: str, data_dir: Path, workers: int) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "CLASSPROBE_DATABASE_URL": url, "CLASSPROBE_DATA_DIR": str(data_dir),
           "CLASSPROBE_NOTIFY_INTERVAL_S": "0",
           # a few simulated agents post far more often than real ones: no per-agent limit
           "CLASSPROBE_AGENT_RATE_PER_MINUTE": "100000000"}
    log = (data_dir / f"collector-{workers}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "collector.app:app_from_env", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--log-level", "warning", "--no-access-log"],
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
        yield base
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
            r = await client.post("/api/v1/enrol", json={"token": token,
                                                         "room": f"Room {i % 40}"})
            r.raise_for_status()
            body = r.json()
            return str(body["agent_id"]), str(body["credential"])

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def drive(base: str, token: str, res: Result, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        agents = await enrol_agents(client, token, res.agents, concurrency)
        template = report_template(res.measurements_per_report)
        turn = itertools.cycle(agents)
        latencies: list[float] = []
        errors: Counter[str] = Counter()
        stop_at = time.monotonic() + res.seconds

        async def worker() -> None:
            while time.monotonic() < stop_at:
                agent_id, credential = next(turn)
                body = batch_body(template, agent_id, res.batch)
                t0 = time.perf_counter()
                try:
                    r = await client.post("/api/v1/reports", content=body, headers={
                        "Authorization": f"Bearer {credential}",
                        "Content-Type": "application/json"})
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors[f"HTTP {r.status_code}"] += 1
                    continue
                stored = len(r.json()["accepted"])
                res.reports += stored
                res.measurements += stored * res.measurements_per_report

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    res.requests = len(latencies)
    res.reports_s = res.reports / elapsed
    res.measurements_s = res.measurements / elapsed
    if latencies:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        res.p50_ms, res.p99_ms = cuts[49] * 1000, cuts[98] * 1000
    res.errors = dict(errors)


# -- backends -----------------------------------------------------------------------------
@contextmanager
def database(backend: str, workdir: Path, name: str, pg_url: str | None) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'{name}.db'}"
        return
    if pg_url:
        yield pg_url
        return
    from tests.pg.server import PgServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    pg_dir = Path(tempfile.mkdtemp(prefix="classprobe-loadpg-"))
    server = PgServer.start(pg_dir)
    try:
        yield server.create_database(name)
    finally:
        server.stop()
        shutil.rmtree(pg_dir, ignore_errors=True)


def run_one(backend: str, workers: int, args: argparse.Namespace, workdir: Path) -> Result:
    res = Result(backend, workers, args.agents, args.seconds, args.batch, args.measurements)
    try:
        with database(backend, workdir, f"load_{backend}_{workers}", args.pg_url) as url:
            token = prepare_database(url)
            with collector(url, workdir, workers) as base:
                asyncio.run(drive(base, token, res, args.concurrency))
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        res.skipped = f"{type(exc).__name__}: {exc}"
    return res


def table(results: list[Result]) -> str:
    head = (f"{'backend':<11}{'workers':>8}{'reports/s':>11}{'meas/s':>10}{'p50 ms':>9}"
            f"{'p99 ms':>9}{'requests':>10}  errors  goal")
    lines = [head, "-" * len(head)]
    for r in results:
        if r.skipped:
            lines.append(f"{r.backend:<11}{r.workers:>8}  skipped: {r.skipped}")
            continue
        errs = ",".join(f"{k}={v}" for k, v in r.errors.items()) or "0"
        lines.append(f"{r.backend:<11}{r.workers:>8}{r.reports_s:>11.0f}{r.measurements_s:>10.0f}"
                     f"{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{r.requests:>10}  {errs:<6}  {r.goal}")
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
    p.add_argument("--measurements", type=int, default=25, help="measurements per report")
    p.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    p.add_argument("--pg-url", default=None, help="use this PostgreSQL database "
                   "(its rows are kept) instead of a throwaway server")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    for name in ("agents", "batch", "measurements", "concurrency"):
        if getattr(args, name) < 1:
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
